"""ECG figures: the standard 12-lead paper layout (``paper``), the records it draws (``view``,
``load``), the offending stretches of rejected records (``marks``) and the dataset card's
figures (``card``). matplotlib is imported only inside the drawing functions."""
