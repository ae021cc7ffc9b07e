"""The oncologist's pages: the course list, a new course, the course review, its signed decisions and the summary."""
