"""The package version, in a module of its own: the SDK's modules read it while the package
initialises, and importing it from ``deepproduct.sdk`` itself would be an import cycle."""

__version__ = "0.1.0"
