"""Pure domain knowledge: URL formats, clouds, sidecar env rules, image tags. No I/O."""
