"""Where each her2st file lives in the public repository, and its sha256."""

from __future__ import annotations

from typing import NamedTuple

#: Commit of the public GitHub repository ``almaan/her2st`` that the files are read from.
HER2ST_COMMIT = "85df7411b987a7dec3feff9718b869a7a82091ec"
#: Default download address; ``$GENAR_HER2ST_URL`` or ``base_url=`` replace it (e.g. a mirror or ``file://``).
HER2ST_BASE_URL = f"https://raw.githubusercontent.com/almaan/her2st/{HER2ST_COMMIT}/data"


class SectionFiles(NamedTuple):
    """Paths (relative to the data folder) and sha256 digests of one section's three files."""

    counts: str
    counts_sha256: str
    spots: str
    spots_sha256: str
    image: str
    image_sha256: str


HER2ST_SECTIONS: dict[str, SectionFiles] = {
    "B4": SectionFiles(
        "ST-cnts/B4.tsv.gz",
        "e38231c2a38c9bc7e6d550eec0e527c1869ee0e525fc913e708d1323c34f5ebb",
        "ST-spotfiles/B4_selection.tsv",
        "192b46f3ca414c85753a01a4fb5760a697ca6c0a1aadb949c4687cc6efa9faa0",
        "ST-imgs/B/B4/BT10737_D2_HE.jpg",
        "3cb165614ce2a13426381e450220dccac980cc9bda6a90fb041c28ca0e2c753d",
    ),
    "C2": SectionFiles(
        "ST-cnts/C2.tsv.gz",
        "c1c59ea6cffae36b9ecb561b8e2a97e3aa5f4085f748e991a0e330ed9d09773d",
        "ST-spotfiles/C2_selection.tsv",
        "235b5f4306b3b57c628ffc82c98c7109602474fbcc79a917b9c50517f99b6b1c",
        "ST-imgs/C/C2/5714_HE_BT_C2.jpg",
        "26e2f73ae840cdd46c5bba405aae181f13a56a376b9848dff23f7a9c5de7f19e",
    ),
    "C3": SectionFiles(
        "ST-cnts/C3.tsv.gz",
        "e00c55a3eb9caac5d9c71b8906aae8be8b38f93e23938f4a0ebee17683ef6a2a",
        "ST-spotfiles/C3_selection.tsv",
        "7fd76c13370b7804ac3bb377b846d22485cf9223f9dd8dfc25be06e5aaf65755",
        "ST-imgs/C/C3/5714_HE_BT_D1.jpg",
        "0005a92674014d473040a28f0afca89ce5fa5c44019b479b638ceb3272ceb568",
    ),
    "C4": SectionFiles(
        "ST-cnts/C4.tsv.gz",
        "33201f76d41d7131dc600a0f87d9a70383af3503e81698b4d11e6f2e8d73e9da",
        "ST-spotfiles/C4_selection.tsv",
        "47e79f3b9dbfa3a8c18af9e948ba7ba4bf0a75ea1b4c292bc714ced7d0917d4c",
        "ST-imgs/C/C4/5714_HE_BT_D2.jpg",
        "f40607eb1d5f0d125decd71c48b0c5d29cf6776ad92297fd185631208c82d6f2",
    ),
}
