"""The one-machine local stack: the deployed application's pieces, emulated in process."""
