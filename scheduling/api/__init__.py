"""The JSON API for courses, doses and the course review (API.md), under /api/v1/."""
