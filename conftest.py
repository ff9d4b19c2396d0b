"""pytest: the presence of this file puts the checkout first on sys.path, so the tests always
exercise the code beside them rather than whichever copy of ``harness`` happens to be installed."""
