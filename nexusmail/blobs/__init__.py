"""Attachment bytes, kept by their SHA-256: on local disk or in an S3-compatible store."""
