"""Weights in and out of regnet_keras models: our files, keras.applications' files, downloads, and
PyTorch state dicts (torchvision, timm, pycls, SEER) with the named weights of their publishers.

    h5.py                 our .h5 files, keras.applications' files, the ImageNet download
    torch_zip.py          PyTorch's zip checkpoint format read without torch or code execution
    state_dict_files.py   safetensors / torch.save / in-memory state dicts as NumPy arrays
    pytorch_layouts.py    the four key layouts and their translation to our layers
    architecture.py       the AnyNetConfig a state dict's tensor shapes describe
    origin.py             where imported weights came from, and their evaluation transform
    registry.py           named weights (URL, hash, license, top-1, transform) and downloads
    pytorch.py            from_pytorch / to_pytorch
"""
