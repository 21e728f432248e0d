"""Who the plugin is: the driver name Kubernetes knows it by, and its version."""

from importlib.metadata import version

DRIVER_NAME = "csi.netvol.dev"
DRIVER_VERSION = version("netvol")
