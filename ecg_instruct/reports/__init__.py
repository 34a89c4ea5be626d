"""Report text: language identification, translation to English, fidelity to the labels."""
