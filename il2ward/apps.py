from django.apps import AppConfig


class Il2wardConfig(AppConfig):
    name = "il2ward"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from il2ward import checks  # noqa: F401 - registers the settings checks
        from il2ward.dbroles import grant_after_migrate

        post_migrate.connect(grant_after_migrate, dispatch_uid="il2ward.grant_app_role")

        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from il2ward import security

        user_logged_in.connect(security.on_logged_in, dispatch_uid="il2ward.security.login")
        user_logged_out.connect(security.on_logged_out, dispatch_uid="il2ward.security.logout")
        user_login_failed.connect(security.on_login_failed, dispatch_uid="il2ward.security.login_failed")
        user_locked_out.connect(security.on_locked_out, dispatch_uid="il2ward.security.lockout")

        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from il2ward import credentials

        # A password change or a deactivation revokes the user's API tokens.
        user_model = get_user_model()
        pre_save.connect(credentials.on_user_saving, sender=user_model, dispatch_uid="il2ward.tokens.saving")
        post_save.connect(credentials.on_user_saved, sender=user_model, dispatch_uid="il2ward.tokens.saved")
