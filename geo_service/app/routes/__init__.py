"""The courier app's HTTP routes: the shell and its files, the offline snapshot."""
