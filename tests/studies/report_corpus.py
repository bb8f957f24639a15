"""Original-report variants written for the renderer tests (no dataset text).

Each variant is built from a list of clinical sentences plus decorations that mark a report as
the radiologist's original: signatures in several styles and places, attestations, dictation
notes, staff roles, boilerplate, case-level headings, addenda, numbered or bulleted lists, upper
case and dates in many formats. The tests check that every clinical sentence survives and no
decoration does, so a rule that drops a finding or lets a tell through fails by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# (findings sentences, impression sentences). "{date}" inside a clinical sentence is a date the
# renderer must neutralise while keeping the sentence: CLEAN_DATE says how it should then read.
CLINICAL: list[tuple[list[str], list[str]]] = [
    (
        [
            "The cardiomediastinal silhouette is within normal limits.",
            "The lungs are clear without focal consolidation, effusion or pneumothorax.",
            "No acute osseous abnormality is seen.",
        ],
        ["No acute cardiopulmonary process."],
    ),
    (
        [
            "There is a new opacity in the right lower lobe, compatible with pneumonia in the "
            "appropriate clinical setting.",
            "Small right pleural effusion.",
            "Heart size is mildly enlarged.",
        ],
        ["Right lower lobe pneumonia with a small parapneumonic effusion.", "Mild cardiomegaly."],
    ),
    (
        [
            "An endotracheal tube terminates 4 cm above the carina.",
            "A right internal jugular central venous catheter ends in the SVC.",
            "Bibasilar atelectasis is present.",
        ],
        ["Lines and tubes in satisfactory position.", "Bibasilar atelectasis."],
    ),
    (
        [
            "Compared with {date}, the left upper lobe nodule has grown from 8 mm to 12 mm.",
            "No new nodules are seen.",
        ],
        ["Enlarging left upper lobe nodule; tissue sampling is suggested."],
    ),
    (
        [
            "Moderate pulmonary edema with bilateral interstitial markings.",
            "Bilateral small pleural effusions.",
            "A PICC line tip projects over the cavoatrial junction.",
        ],
        ["Findings are consistent with congestive heart failure."],
    ),
    (
        [
            "There is a compression deformity of the T12 vertebral body, unchanged.",
            "The lungs are hyperinflated, consistent with emphysema.",
            "No pneumothorax.",
        ],
        ["Emphysema.", "Stable T12 compression deformity."],
    ),
    (
        [
            "A 2.3 cm hypodense lesion in segment 7 of the liver is consistent with a simple cyst.",
            "The pancreas, spleen and adrenal glands are unremarkable.",
            "There is no free fluid or free air.",
        ],
        ["Simple hepatic cyst.", "No acute abdominal abnormality."],
    ),
    (
        [
            "Left-sided pneumothorax measuring approximately 2 cm at the apex.",
            "No mediastinal shift.",
        ],
        ["Small left apical pneumothorax without tension."],
    ),
    (
        [
            "Patchy airspace opacities in both lower lobes may represent aspiration.",
            "The nasogastric tube courses below the diaphragm.",
        ],
        ["Bibasilar opacities, possibly aspiration."],
    ),
    (
        [
            "Since {date} there is interval resolution of the left basilar opacity.",
            "The heart is normal in size.",
        ],
        ["Resolved left basilar pneumonia."],
    ),
]
CLEAN_DATE = "the prior study"
ADDENDUM_SENTENCE = "The opacity is also visible on the lateral view."

NAMES = [
    ("Jane", "Okafor", "MD"),
    ("Tomas", "Lindqvist", "M.D."),
    ("Priya", "Raghunathan", "MBBS, FRCR"),
    ("Samuel", "Whitfield", "DO"),
    ("Keiko", "Nakamura", "MD, PhD"),
    ("Ana", "Castellanos", "FRCR"),
]
HOSPITALS = ["Riverside General Hospital", "St Columba Medical Center"]
DATES = [
    "01/02/2020",
    "1/2/20",
    "2020-01-02",
    "02.01.2020",
    "January 2, 2020",
    "2 Jan 2020",
    "02-JAN-2020",
    "Jan. 2, 2020",
    "2nd of January 2020",
    "March 2019",
]
TIMES = ["10:32", "10:32 AM", "1032 hours", "14:05:33", "2:15 p.m."]

SIGNATURES = [
    "Electronically signed by {first} {last}, {cred}, {date} {time}.",
    "Signed: {first} {last} {cred}",
    "{first} {last}, {cred}\n{date}",
    "Electronically signed by: {first} {last} {cred} on {date} at {time}",
    "Report signed off by Dr {last} on {date}.",
    "Verified by {first} {last}, {cred} ({date} {time})",
    "Finalized by Dr. {initial}. {last} on {date}",
    "RADIOLOGIST: {FIRST} {LAST}, {cred}",
]
ATTESTATIONS = [
    "I have personally reviewed the images and agree with the findings.",
    "I, Dr {last}, have reviewed the images and concur with the resident's interpretation.",
    "The images were personally reviewed by the attending radiologist.",
    "I agree with the above report.",
    "Attending attestation: I have reviewed this study.",
]
DICTATIONS = [
    "Report dictated by Dr {last} (resident) on {date}.",
    "Dictated by: {first} {last}  Transcribed by: KLM\nD: {date} T: {date}",
    "This report was dictated using voice recognition software; minor errors may occur.",
    "Dictated {date} {time}. Transcribed {date}. Job #48213",
    "Attending: Dr {last}",
    "Resident: {first} {last}, {cred}",
    "Reading radiologist: {first} {last}",
]
BOILERPLATE = [
    "Thank you for this referral.",
    "This report was generated at {hospital}. Please call the reading room with any questions.",
    "Findings were discussed with Dr {last} by telephone at {time} on {date}.",
    "Please contact the department of radiology if you have questions.",
    "",
]
CASE_HEADINGS = [
    "INDICATION: Cough and fever.\nCOMPARISON: {date}.\nTECHNIQUE: PA and lateral views of the "
    "chest.\n",
    "EXAMINATION: CHEST, TWO VIEWS\nHISTORY: Shortness of breath\n",
    "Clinical history: follow-up of known nodule. Comparison: Chest radiograph dated {date}. ",
    "REASON FOR EXAM: fever\nCOMPARISON: None.\n",
    "",
]
ADDENDA = [
    "\n\nADDENDUM: {addendum}\nElectronically signed by {first} {last}, {cred} on {date}.",
    "\n*** ADDENDUM ***\n{addendum}",
    " Addendum by Dr {last} on {date}: {addendum}",
]
LAYOUTS = ["prose", "numbered", "numbered-paren", "dashes", "bullets", "lines"]
PLACEMENTS = ["own-line", "mid-line", "after-findings", "before-impression"]

# Nothing of these may reach a reader.
FORBIDDEN_WORDS = [
    *(n for first, last, _ in NAMES for n in (first, last)),
    "KLM", "MD", "M.D", "MBBS", "FRCR", "PhD", "DO", "Dr", "signed", "signature", "verified",
    "finalized", "dictated", "transcribed", "voice recognition", "personally", "attending",
    "resident", "radiologist", "attestation", "agree", "concur", "addendum", "indication",
    "comparison", "technique", "history", "examination", "reason for exam", "hospital",
    "medical center", "thank", "please", "telephone", "discussed", "job", "findings:",
    "impression:", "january", "jan", "march", "hours", "p.m", "am", "reading room",
]  # fmt: skip
FORBIDDEN_PATTERNS = [
    re.compile(r"\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2}"),  # numeric dates
    re.compile(r"\b(?:19|20)\d{2}\b"),  # years
    re.compile(r"\d{1,2}:\d{2}"),  # times
    re.compile(r"(?:^|\s)\(?\d{1,2}[.)]\s"),  # list numbers
    re.compile(r"(?:^|\s)[-\u2022*]\s"),  # bullets
]


@dataclass
class Variant:
    name: str
    findings: str
    impression: str
    # The same clinical content as an AI report would write it: plain prose, no decoration.
    clean_findings: str
    clean_impression: str
    kept: list[str] = field(default_factory=list)


def _layout(sentences: list[str], layout: str) -> str:
    if layout == "prose":
        return " ".join(sentences)
    if layout == "lines":
        return "\n".join(s.rstrip(".") for s in sentences)
    marker = {
        "numbered": "{n}. ",
        "numbered-paren": "{n}) ",
        "dashes": "- ",
        "bullets": "\u2022 ",
    }[layout]
    return "\n".join(marker.format(n=n) + s for n, s in enumerate(sentences, 1))


def variants() -> list[Variant]:
    built = []
    for index in range(72):
        findings_sentences, impression_sentences = CLINICAL[index % len(CLINICAL)]
        first, last, cred = NAMES[index % len(NAMES)]
        date = DATES[(index * 3) % len(DATES)]
        values = {
            "first": first,
            "last": last,
            "FIRST": first.upper(),
            "LAST": last.upper(),
            "initial": first[0],
            "cred": cred,
            "date": date,
            "time": TIMES[index % len(TIMES)],
            "hospital": HOSPITALS[index % len(HOSPITALS)],
            "addendum": ADDENDUM_SENTENCE,
        }
        signature = SIGNATURES[index % len(SIGNATURES)].format(**values)
        attestation = ATTESTATIONS[(index // 2) % len(ATTESTATIONS)].format(**values)
        dictation = DICTATIONS[(index * 5) % len(DICTATIONS)].format(**values)
        boilerplate = BOILERPLATE[(index // 3) % len(BOILERPLATE)].format(**values)
        headings = CASE_HEADINGS[index % len(CASE_HEADINGS)].format(**values)
        layout = LAYOUTS[(index // 2) % len(LAYOUTS)]
        placement = PLACEMENTS[(index // 4) % len(PLACEMENTS)]
        has_addendum = index % 4 == 3
        shouted = index % 3 == 2
        has_section_headings = index % 2 == 0

        findings_clinical = [s.replace("{date}", date) for s in findings_sentences]
        findings_clean = [s.replace("{date}", CLEAN_DATE) for s in findings_sentences]
        impression_clinical = list(impression_sentences)
        impression_clean = list(impression_sentences)

        findings = headings + ("FINDINGS: " if has_section_headings else "")
        findings += _layout(findings_clinical, "prose" if index % 5 else "lines")
        impression = ("IMPRESSION:\n" if has_section_headings else "") + _layout(
            impression_clinical, layout
        )
        if placement == "own-line":
            impression += f"\n\n{attestation}\n{signature}\n{dictation}"
        elif placement == "mid-line":
            impression += f" {attestation} {signature}\n{dictation}"
        elif placement == "after-findings":
            findings += f" {signature}\n{dictation}"
            impression += f"\n{attestation}"
        else:
            impression = f"{dictation}\n{attestation}\n{impression}\n{signature}"
        if boilerplate:
            impression += ("\n" if index % 2 else " ") + boilerplate
        if has_addendum:
            impression += ADDENDA[(index // 4) % len(ADDENDA)].format(**values)
            impression_clean.append(ADDENDUM_SENTENCE)
        if shouted:
            findings, impression = findings.upper(), impression.upper()
        built.append(
            Variant(
                name=f"v{index:02d}-{layout}-{placement}{'-caps' if shouted else ''}",
                findings=findings,
                impression=impression,
                clean_findings=" ".join(findings_clean),
                clean_impression=" ".join(impression_clean),
                kept=findings_clean + impression_clean,
            )
        )
    return built
