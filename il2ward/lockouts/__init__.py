"""django-axes' reset commands, taken over (this app is listed before `axes`, so its commands of the same names win):
every unlock from the command line goes through il2ward.credentials.lockout_unlock, into the security log and the
audit trail, like an unlock in the admin."""
