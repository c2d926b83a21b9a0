"""Lesson videos on the API side: HeyGen's completion webhooks, media files (with HTTP ranges
locally, presigned redirects on S3), and the admin's re-request and counts."""
