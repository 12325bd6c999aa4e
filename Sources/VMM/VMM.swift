// The built-in VMM (issue 3).
