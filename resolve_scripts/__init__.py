"""Scripts that run inside DaVinci Resolve (standard library only), shipped as package data."""
