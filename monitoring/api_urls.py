urlpatterns: list = []  # observation endpoints come with the hold rules (issue 3)
