"""``python -m zephr_desktop``."""

from .fasttoken import main_entry

if __name__ == "__main__":
    main_entry()
