"""Reference controller firmware: ``main.py`` runs on the board and, through ``host.py``,
behind a pseudo-terminal on the Pi or a laptop."""
