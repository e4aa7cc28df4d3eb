"""What a client can ask for, and how it is checked: names, defaults, limits, validation.

Torch-free on purpose (nothing here imports torch, matplotlib or the models): the HTTP API
validates submissions with exactly the code the library trains with, without loading PyTorch.
The library, the CLI and the API all take their choices and defaults from here; a test keeps
this package's names equal to what the torch side implements.
"""
