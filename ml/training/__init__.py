"""The workshop: the code that makes and measures models.

Datasets and their import (`datasets`, `sources`), self-blended fakes and augmentation
(`sbi`, `augment`), training (`train`), evaluation through the full pipeline (`evaluate`,
`crossval`, `scoreboard`) and verdict calibration (`calibrate`). The engine (`ml.inference`,
`ml.faces`, ...) never imports this package; the worker and the live service never load it.
"""
