"""editor: the server-side video editor, challenges and sound library (a later issue)."""
