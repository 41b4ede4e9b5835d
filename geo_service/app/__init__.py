"""The courier phone app (issue 14): its page, and the offline snapshot it keeps."""
