// Keeps every layer library non-empty while its folder is being filled in.
