"""Where each file of the 36 her2st sections lives in the public repository, with its git blob id (and sha256).

The table is the repository's listing at :data:`HER2ST_COMMIT` (``MANIFEST.tsv`` of the shared data folder): a
download is checked against the file's git blob id (the SHA-1 of the bytes ``blob <size>``, a zero byte, and the
content), and against its sha256 where one was recorded.
"""

from __future__ import annotations

from typing import NamedTuple

#: Commit of the public GitHub repository ``almaan/her2st`` that the files are read from.
HER2ST_COMMIT = "85df7411b987a7dec3feff9718b869a7a82091ec"
#: Default download address; ``$GENAR_HER2ST_URL`` or ``base_url=`` replace it (e.g. a mirror or ``file://``).
HER2ST_BASE_URL = f"https://raw.githubusercontent.com/almaan/her2st/{HER2ST_COMMIT}/data"
#: The four sections whose H&E images the shared data folder holds (and the demo uses).
PAIRED_SECTIONS = ("B4", "C2", "C3", "C4")


class RemoteFile(NamedTuple):
    """One file: its path below the data folder, git blob id, size in bytes (if recorded) and sha256 (if recorded)."""

    path: str
    git_blob_sha1: str
    size: int | None = None
    sha256: str | None = None


class SectionFiles(NamedTuple):
    """The three files of one section: raw counts, spot positions and the H&E image."""

    counts: RemoteFile
    spots: RemoteFile
    image: RemoteFile


HER2ST_SECTIONS: dict[str, SectionFiles] = {
    "A1": SectionFiles(
        counts=RemoteFile("ST-cnts/A1.tsv.gz", "ed06cdd5316bcbf9fabf38f7675cdc99d5ecc12e", 1033376),
        spots=RemoteFile("ST-spotfiles/A1_selection.tsv", "93243b2efdc34bbc0c744903482f2f206a221f08", 12879),
        image=RemoteFile("ST-imgs/A/A1/9769_C1_HE_small.jpg", "9e3ffa0bc368b2c89fb56f6db66f124aca2d8805", None),
    ),
    "A2": SectionFiles(
        counts=RemoteFile("ST-cnts/A2.tsv.gz", "798793783f58c33f5a4a9a077bc2fd22c5ed1c38", 1340590),
        spots=RemoteFile("ST-spotfiles/A2_selection.tsv", "e897958f4aeb659848f63e5211ffb174bce663f2", 11958),
        image=RemoteFile("ST-imgs/A/A2/9769_C2_HE_small.jpg", "fac2f91748e04e6ddcd11d38bb8578d17e9c466c", None),
    ),
    "A3": SectionFiles(
        counts=RemoteFile("ST-cnts/A3.tsv.gz", "696f7cdc75e9b99bbce2d0ab9105afc01d48306f", 1358980),
        spots=RemoteFile("ST-spotfiles/A3_selection.tsv", "c0de79aa9527155da6fa21d0c9a92f9ad08647fc", 13441),
        image=RemoteFile("ST-imgs/A/A3/9769_D1_HE_small.jpg", "ce582dea438de7231b253ea442aafa8110411e6d", None),
    ),
    "A4": SectionFiles(
        counts=RemoteFile("ST-cnts/A4.tsv.gz", "916edc64381a0c65df0c7511240d4aa3d5a87537", 1297246),
        spots=RemoteFile("ST-spotfiles/A4_selection.tsv", "5164c0ddb26839b067df7fa09a3b1bf9dbae46e4", 12712),
        image=RemoteFile("ST-imgs/A/A4/9769_D2_HE_small.jpg", "0ff7e4aec940feb63670953c4399b01128b674f7", None),
    ),
    "A5": SectionFiles(
        counts=RemoteFile("ST-cnts/A5.tsv.gz", "fd77bda622b3d1c18bd178b4a55e5d65be9eb9ff", 1247949),
        spots=RemoteFile("ST-spotfiles/A5_selection.tsv", "73a9b31ebd4f6b03d2786af681a4fa2827e86d62", 12398),
        image=RemoteFile("ST-imgs/A/A5/9769_E1_HE_small.jpg", "16e736aed143d7c6a38845722111734bc2e8d29e", None),
    ),
    "A6": SectionFiles(
        counts=RemoteFile("ST-cnts/A6.tsv.gz", "75988489c3567ed91fd3d7009e7eb5d73456ccd3", 1314417),
        spots=RemoteFile("ST-spotfiles/A6_selection.tsv", "0d3272f518bf9b4f2256aa45e21ce150245551d8", 11860),
        image=RemoteFile("ST-imgs/A/A6/9769_E2_HE_small.jpg", "2655460c930e21f0bb865cbfbfd472cfba7fc9a3", None),
    ),
    "B1": SectionFiles(
        counts=RemoteFile("ST-cnts/B1.tsv.gz", "3334df264f77ecb89c3111f49d37336753462ee7", 657516),
        spots=RemoteFile("ST-spotfiles/B1_selection.tsv", "355370440f6b328172f08f57266244f3fa7c902c", 10794),
        image=RemoteFile("ST-imgs/B/B1/BT10737_C1_HE.jpg", "2f88e1cdbf5fc2ddc79a21e0d61353b659a6915c", None),
    ),
    "B2": SectionFiles(
        counts=RemoteFile("ST-cnts/B2.tsv.gz", "a6948f1587ca0c8a55eb434075fe6cd6374e8fd6", 596436),
        spots=RemoteFile("ST-spotfiles/B2_selection.tsv", "c22fd2fe145f91cc44fe04438170c3cf25438a21", 9838),
        image=RemoteFile("ST-imgs/B/B2/BT10737_C2_HE.jpg", "081fb671960850911a0c796fcf80f6509e3ae947", None),
    ),
    "B3": SectionFiles(
        counts=RemoteFile("ST-cnts/B3.tsv.gz", "14d4a1303360f2cd78db150d0413b07fb7744fa4", 613993),
        spots=RemoteFile("ST-spotfiles/B3_selection.tsv", "5f35c6fc44595a64b7b539ba48b0f4e48472eab3", 10924),
        image=RemoteFile("ST-imgs/B/B3/BT10737_D1_HE.jpg", "317b9ea3406243173f117c6b7675a0ed645ad2eb", None),
    ),
    "B4": SectionFiles(
        counts=RemoteFile(
            "ST-cnts/B4.tsv.gz",
            "7df7de55db781f5bdd356a58a9dd354fe53fafa5",
            563881,
            "e38231c2a38c9bc7e6d550eec0e527c1869ee0e525fc913e708d1323c34f5ebb",
        ),
        spots=RemoteFile(
            "ST-spotfiles/B4_selection.tsv",
            "76fd789fb18a8746160eda594241ccec309f058c",
            10560,
            "192b46f3ca414c85753a01a4fb5760a697ca6c0a1aadb949c4687cc6efa9faa0",
        ),
        image=RemoteFile(
            "ST-imgs/B/B4/BT10737_D2_HE.jpg",
            "3f2911165330e7cf352ecc380ba9e826117ed925",
            4076552,
            "3cb165614ce2a13426381e450220dccac980cc9bda6a90fb041c28ca0e2c753d",
        ),
    ),
    "B5": SectionFiles(
        counts=RemoteFile("ST-cnts/B5.tsv.gz", "11bced96a7d4dc8d280d8da4098fd3577cf5f011", 688429),
        spots=RemoteFile("ST-spotfiles/B5_selection.tsv", "c0bb5a917fe315c3253a11f7d4bde9ecff468f4f", 10631),
        image=RemoteFile("ST-imgs/B/B5/BT10737_E1_HE.jpg", "d095e63aaa5d173c57211fdf5fb05c61add344d9", None),
    ),
    "B6": SectionFiles(
        counts=RemoteFile("ST-cnts/B6.tsv.gz", "8cd6db3760f85dad3275958f1864ad3acf6ce795", 625356),
        spots=RemoteFile("ST-spotfiles/B6_selection.tsv", "9d2ba938b3110542083b94e602f29606a9f12667", 10247),
        image=RemoteFile("ST-imgs/B/B6/BT10737_E2_HE.jpg", "3c904f992aa1f001fe951d1d29b422db22ce877e", None),
    ),
    "C1": SectionFiles(
        counts=RemoteFile("ST-cnts/C1.tsv.gz", "d1ec7da82a26808fc292e10d65b9dd11b225ff31", 752999),
        spots=RemoteFile("ST-spotfiles/C1_selection.tsv", "ee2ba654f40812ab2e7331f15b811109ec1b7cc2", 6631),
        image=RemoteFile("ST-imgs/C/C1/5714_HE_BT_C1.jpg", "3b128d5006a5d7a67a11fd3be5e3d482063663c7", None),
    ),
    "C2": SectionFiles(
        counts=RemoteFile(
            "ST-cnts/C2.tsv.gz",
            "4a82b07e53fda5334f3318dd83cbf3024608f7c2",
            821408,
            "c1c59ea6cffae36b9ecb561b8e2a97e3aa5f4085f748e991a0e330ed9d09773d",
        ),
        spots=RemoteFile(
            "ST-spotfiles/C2_selection.tsv",
            "ae0147fd6fc7e81e3a1bc23e35a7c86274357f79",
            7053,
            "235b5f4306b3b57c628ffc82c98c7109602474fbcc79a917b9c50517f99b6b1c",
        ),
        image=RemoteFile(
            "ST-imgs/C/C2/5714_HE_BT_C2.jpg",
            "771d9063017f286c0290a6c6ca3488f8402346de",
            3990230,
            "26e2f73ae840cdd46c5bba405aae181f13a56a376b9848dff23f7a9c5de7f19e",
        ),
    ),
    "C3": SectionFiles(
        counts=RemoteFile(
            "ST-cnts/C3.tsv.gz",
            "5d9cdcc0a1cec8e54074e4db185c8e74412d55d9",
            847901,
            "e00c55a3eb9caac5d9c71b8906aae8be8b38f93e23938f4a0ebee17683ef6a2a",
        ),
        spots=RemoteFile(
            "ST-spotfiles/C3_selection.tsv",
            "8b6dbbd08f07c444f350693a9b1d35eb37f9340a",
            6728,
            "7fd76c13370b7804ac3bb377b846d22485cf9223f9dd8dfc25be06e5aaf65755",
        ),
        image=RemoteFile(
            "ST-imgs/C/C3/5714_HE_BT_D1.jpg",
            "d1dc707439af463f581879a18fa723ee4d8a0bf5",
            3915842,
            "0005a92674014d473040a28f0afca89ce5fa5c44019b479b638ceb3272ceb568",
        ),
    ),
    "C4": SectionFiles(
        counts=RemoteFile(
            "ST-cnts/C4.tsv.gz",
            "7d1b9779d0ea4873d02822b495faba18fa251ce7",
            886246,
            "33201f76d41d7131dc600a0f87d9a70383af3503e81698b4d11e6f2e8d73e9da",
        ),
        spots=RemoteFile(
            "ST-spotfiles/C4_selection.tsv",
            "7ff3ad4ddc19451916d2f5d10e23564db53851c1",
            6960,
            "47e79f3b9dbfa3a8c18af9e948ba7ba4bf0a75ea1b4c292bc714ced7d0917d4c",
        ),
        image=RemoteFile(
            "ST-imgs/C/C4/5714_HE_BT_D2.jpg",
            "2e0232d8b67b64759a67daa58ca1a486bf6231d6",
            3806070,
            "f40607eb1d5f0d125decd71c48b0c5d29cf6776ad92297fd185631208c82d6f2",
        ),
    ),
    "C5": SectionFiles(
        counts=RemoteFile("ST-cnts/C5.tsv.gz", "068a62a721f2f6ff95bdf4c41252700776a10fbb", 845308),
        spots=RemoteFile("ST-spotfiles/C5_selection.tsv", "070390da1f2a4690c9540624befb9a28d3f167db", 6802),
        image=RemoteFile("ST-imgs/C/C5/5714_HE_BT_E1.jpg", "9be7a134e17b963183a4ebb154ae139a07b3958f", 3719130),
    ),
    "C6": SectionFiles(
        counts=RemoteFile("ST-cnts/C6.tsv.gz", "5cf0fd7945d5d6445b06cceca60fce1f2def7e67", 892853),
        spots=RemoteFile("ST-spotfiles/C6_selection.tsv", "9101c7d64d329d97ae269ab34725549e7ac4a365", 6655),
        image=RemoteFile("ST-imgs/C/C6/5714_HE_BT_E2.jpg", "4a1c0375c2b6743c66fdcd70c6f1991ad0b61e19", 3941039),
    ),
    "D1": SectionFiles(
        counts=RemoteFile("ST-cnts/D1.tsv.gz", "265843364b2d2d3842b0665bc35efd89e5408e5b", 1251370),
        spots=RemoteFile("ST-spotfiles/D1_selection.tsv", "853761f0c066c051717307908ed56d8a22600a93", 11444),
        image=RemoteFile("ST-imgs/D/D1/10426_HE_BT_C1.jpg", "0666416fa4640d15994a949397390f02a7bf6952", None),
    ),
    "D2": SectionFiles(
        counts=RemoteFile("ST-cnts/D2.tsv.gz", "4a2ac48659bad39e183e66051ee1610499ddbec8", 990376),
        spots=RemoteFile("ST-spotfiles/D2_selection.tsv", "9385e63d91bb91c486b6c83152adefbd459c8f6b", 11223),
        image=RemoteFile("ST-imgs/D/D2/10426_HE_BT_C2.jpg", "e9041416ece731aad3e47be37c4af37259d02116", None),
    ),
    "D3": SectionFiles(
        counts=RemoteFile("ST-cnts/D3.tsv.gz", "dc243401bc58c006600118b3495fe4bebeb6ee1b", 1061872),
        spots=RemoteFile("ST-spotfiles/D3_selection.tsv", "0a711ec7f09392b574db8f4336619dc2264f238b", 11120),
        image=RemoteFile("ST-imgs/D/D3/10426_HE_BT_D1.jpg", "0b277a7bd72f9d3d430b904e456a8937d7c8d116", None),
    ),
    "D4": SectionFiles(
        counts=RemoteFile("ST-cnts/D4.tsv.gz", "b87c0f54355e211418b0ba3a33c2c639c901ffb0", 1023224),
        spots=RemoteFile("ST-spotfiles/D4_selection.tsv", "68f1e7f878935e013fa15ffc7fcbfc3e10af1234", 11260),
        image=RemoteFile("ST-imgs/D/D4/10426_HE_BT_D2.jpg", "29a7f39c9f6641398d70df65a17ad9285e694151", None),
    ),
    "D5": SectionFiles(
        counts=RemoteFile("ST-cnts/D5.tsv.gz", "13799f783c8695969648fb9c2b44f7b8acd7542d", 1073620),
        spots=RemoteFile("ST-spotfiles/D5_selection.tsv", "77228c6c750def28a25df945be153cff9acaf827", 11517),
        image=RemoteFile("ST-imgs/D/D5/10426_HE_BT_E1.jpg", "891c8e83304a1fd3b6eeba7f4c364141033fe7a0", None),
    ),
    "D6": SectionFiles(
        counts=RemoteFile("ST-cnts/D6.tsv.gz", "162d6ffe8e391a25eecc0e7747e05987983c80cc", 1011895),
        spots=RemoteFile("ST-spotfiles/D6_selection.tsv", "e8858ff2f697f091ac3c55d3f6c41f376b730451", 11921),
        image=RemoteFile("ST-imgs/D/D6/10426_HE_BT_E2.jpg", "c4b63fa0ca5939d681b0acea378e776b764952d4", None),
    ),
    "E1": SectionFiles(
        counts=RemoteFile("ST-cnts/E1.tsv.gz", "622c33652fe59d7bb2279fd2cfb19c6ed943e38f", 1017499),
        spots=RemoteFile("ST-spotfiles/E1_selection.tsv", "50315a36068f5270dab12dd618fa4f176d0e8d60", 21672),
        image=RemoteFile("ST-imgs/E/E1/HE_BT23567_D2.jpg", "002df3eb261e101533c481d2f8c29ec3a558f94a", None),
    ),
    "E2": SectionFiles(
        counts=RemoteFile("ST-cnts/E2.tsv.gz", "5a97fa91c5142e8d89ffb1646f059ba3c031237d", 1256268),
        spots=RemoteFile("ST-spotfiles/E2_selection.tsv", "10278ee1f260e3ef7dd59a107856a04bfd21b368", 21116),
        image=RemoteFile("ST-imgs/E/E2/HE_BT23567_E1.jpg", "9ff4b135b74955e4f42e7712e2ffcc8cadc24dad", None),
    ),
    "E3": SectionFiles(
        counts=RemoteFile("ST-cnts/E3.tsv.gz", "bf92570ea3c5e9b5e27cc1638c590324de660105", 1237843),
        spots=RemoteFile("ST-spotfiles/E3_selection.tsv", "04bd8c5a4c5db5d21823bb10d855a1e39ceb365f", 21146),
        image=RemoteFile("ST-imgs/E/E3/HE_BT23567_E2.jpg", "ca100ef000f50efcd6625c51c38983d0c6529f9f", None),
    ),
    "F1": SectionFiles(
        counts=RemoteFile("ST-cnts/F1.tsv.gz", "251239709026e4ee83f7bc55724dcf82ee44151e", 1778749),
        spots=RemoteFile("ST-spotfiles/F1_selection.tsv", "ed572bf182aab691c540d7d77df6cb2723668807", 25344),
        image=RemoteFile("ST-imgs/F/F1/HE_BT23810_D2.jpg", "d0863987f72d96517b28c7515854700cfbb4556d", None),
    ),
    "F2": SectionFiles(
        counts=RemoteFile("ST-cnts/F2.tsv.gz", "11974082c3d132f0ac8141aecbc827a2eb5c0839", 1880241),
        spots=RemoteFile("ST-spotfiles/F2_selection.tsv", "b0648050dea844c1b29b3c4e71593c69951ae2d9", 25504),
        image=RemoteFile("ST-imgs/F/F2/HE_BT23810_E1.jpg", "a9ce69a96e8f9ac6048f652320181e0465ef7cc6", None),
    ),
    "F3": SectionFiles(
        counts=RemoteFile("ST-cnts/F3.tsv.gz", "95cb0ed789fff572b119ea016cb251f1e1b67ecb", 1900113),
        spots=RemoteFile("ST-spotfiles/F3_selection.tsv", "33bd2a18ca77b3ad37268c8061a929c3c7bb53bd", 26018),
        image=RemoteFile("ST-imgs/F/F3/HE_BT23810_E2.jpg", "636f267974dac208c34bac44488614a87528d1b9", None),
    ),
    "G1": SectionFiles(
        counts=RemoteFile("ST-cnts/G1.tsv.gz", "3e652b201c7177397cf988499297e86ac244edec", 852454),
        spots=RemoteFile("ST-spotfiles/G1_selection.tsv", "6647e81c7171023fe5bed981d8385f93052e0f85", 16203),
        image=RemoteFile("ST-imgs/G/G1/HE_BT23903_C1a.jpg", "a27a666047d394035ea369123a02485583256ba5", None),
    ),
    "G2": SectionFiles(
        counts=RemoteFile("ST-cnts/G2.tsv.gz", "fea756a9da507fc7c6ab2c3081d9755ea151c65f", 954118),
        spots=RemoteFile("ST-spotfiles/G2_selection.tsv", "41cf95ce0b656b4297496bbce7d1507deed13c76", 17128),
        image=RemoteFile("ST-imgs/G/G2/HE_BT23903_C2a.jpg", "19914bbc8169a2e33799c6e295a5b5afb6e496a0", None),
    ),
    "G3": SectionFiles(
        counts=RemoteFile("ST-cnts/G3.tsv.gz", "6e324e5713a25c1b7fa0d4583f16c5d841996645", 837354),
        spots=RemoteFile("ST-spotfiles/G3_selection.tsv", "22617456d5bbe4f6eb6c69d86e54c68e72924108", 17139),
        image=RemoteFile("ST-imgs/G/G3/HE_BT23903_D1a.jpg", "4e3178f618b990a4a5548f791794bb2d4aac9279", None),
    ),
    "H1": SectionFiles(
        counts=RemoteFile("ST-cnts/H1.tsv.gz", "0e1caaadf4d222ca6e676c0c990fea9b6d07d1ba", 972770),
        spots=RemoteFile("ST-spotfiles/H1_selection.tsv", "5e6def09397fc55b7119e9180bcfa499b4ada758", 22695),
        image=RemoteFile("ST-imgs/H/H1/HE_BT24044_D2.jpg", "9a9b455fa697252cd9faa63b1b0b91c18e600566", None),
    ),
    "H2": SectionFiles(
        counts=RemoteFile("ST-cnts/H2.tsv.gz", "89281de0ce675d1ee9c64fc2047111f7b3f41eb3", 1023577),
        spots=RemoteFile("ST-spotfiles/H2_selection.tsv", "f0849180009bd468b17e37e2e97c4fa37d8ccd43", 22331),
        image=RemoteFile("ST-imgs/H/H2/HE_BT24044_E1.jpg", "a8dde449dfd8ee9c988b0c49451eae9e894071d2", None),
    ),
    "H3": SectionFiles(
        counts=RemoteFile("ST-cnts/H3.tsv.gz", "57fcb104140fe563e271de43f48a19518d5d7224", 733852),
        spots=RemoteFile("ST-spotfiles/H3_selection.tsv", "a66424dd31e1adcb2beb9820258c3318a1b526b6", 18964),
        image=RemoteFile("ST-imgs/H/H3/HE_BT24044_E2.jpg", "e1f23756d6926a4b41d95669f6e16141cdda943f", None),
    ),
}
