"""Music pipelines: search (query -> video URL) and download (video URL -> mp3 on S3)."""
