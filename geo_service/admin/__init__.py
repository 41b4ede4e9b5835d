"""Administration over HTTP: API keys and station history."""
