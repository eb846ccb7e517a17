"""app: the FastAPI service and the command line of SD UNet Explorer, built on sdunet_core."""
