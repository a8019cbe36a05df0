"""What every stage shares: user-facing errors, escaping, strict JSON input, names, signals,
tool locators, the repository's paths, the atomic build folder and the command-line entry.
Imports nothing else of cfgen."""
