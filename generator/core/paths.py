"""Where the repository's data folders are: the one owner of the checkout's layout.

cfgen runs from its checkout (README): the unit libraries, templates, board files and the
board driver are read from the folders beside the `generator` package.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "templates"
BOARDS_DIR = REPO_ROOT / "boards"
HOST_DIR = REPO_ROOT / "host"
HLS_LIB = REPO_ROOT / "hls"
RTL_LIB = REPO_ROOT / "rtl"
SIM_SRC = REPO_ROOT / "sim"
