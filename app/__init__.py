"""app: the FastAPI service and the command line of SD UNet Explorer, built on sdunet_core.

`__version__` is the package's one version: the build reads it from here (pyproject's `[tool.hatch.version]`), and
`sdunet-explorer --version` and the OpenAPI schema print it.
"""

__version__ = "0.1.0"
