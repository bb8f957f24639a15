"""Clean Descriptors (PS3.15 E.3.5): what of a study, series or protocol description survives.

Descriptors are typed by people at the modality, so they carry whatever was on the requisition:
"CHEST per Dr Gregory House", "pt Jon Smyth bed 12", "DOB Jan 05 1950 MRN 7788". They reach
coordinators and analysts (readers never get them, see dicomweb/reader_view.py), so cleaning
them is about PHI, not blinding.

The rule, in order:

1. A descriptor longer than 64 characters, with characters outside a plain set (letters,
   digits, space and ``.,:;()+-_/&^%*#'``), or with several values is dropped whole.
2. Removed wherever they appear: dates in digits (05/01/1950, 1950-01-05, 20200105) or words
   (Jan 05 1950, 5 January 2020), years (1900 to 2099), times (14:05, 2 pm), runs of five or
   more digits, identifier labels with their values (MRN, DOB, accession, bed, room, ward,
   SSN, NHS; and ID, MR, acc, case with a number), person names after a title (Dr, Mrs,
   Prof, ...) or an introducer (pt, patient, per, by, ref, for, ...), and any word of the
   original header's names and identifiers (patient, physicians, operators, institution).
3. When in doubt, the descriptor is dropped: what is left must consist only of radiology
   words (``VOCABULARY``: anatomy, views, modalities, techniques, indications, connecting
   words), single letters and technical tokens (1.25MM, B40f, T2, 3D, 120KV). Any other word
   (a name with no title, a place, a word we do not know) drops the whole descriptor; so does
   a descriptor with nothing left. CamelCase protocol names are read word by word
   (AThoraxRoutine: A, Thorax, Routine).

A vocabulary rather than a list of names: names cannot be enumerated, and a descriptor that
loses an unknown word costs a coordinator a label, while one that keeps it may keep a name.
"""

from __future__ import annotations

import re

MAX_LENGTH = 64
_PLAIN = re.compile(r"^[A-Za-z0-9 .,:;()+\-_/&^%*#']*$")

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_SEP = r"[\s,./\-]*"
# Each pattern names something identifying; what it matches is removed.
_REMOVED = [
    # Dates written with a month name next to a number: 5 January 2020, 05-JAN-1950,
    # Jan 05 1950, Jan 5th, 2020, Jan 1950 (a month name alone is no date: DEC is decubitus).
    re.compile(rf"\b{_DAY}{_SEP}{_MONTH}(?:{_SEP}\d{{2,4}})?\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}{_SEP}{_DAY}\b(?:{_SEP}\d{{2,4}}\b)?", re.IGNORECASE),
    # Dates in digits: 05/01/1950, 1950-01-05, 5.1.50 (also catches version-like triples).
    re.compile(r"\b\d{1,4}([./\-])\d{1,2}\1\d{1,4}\b"),
    re.compile(r"\b\d{1,2}/\d{1,2}\b"),
    # Times of day: 14:05, 14:05:33.5, 2 pm, 2:05am.
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[ap]\.?m\b\.?)?", re.IGNORECASE),
    re.compile(r"\b\d{1,2}\s*[ap]\.?m\b\.?", re.IGNORECASE),
    # Identifier labels, with their value when one follows.
    re.compile(
        r"\b(?:MRN|MR#|D\.?O\.?B|DOB|ACCESSION|ACCN|SSN|NHS|BED|ROOM|RM|WARD|BIRTH|BORN)\b\.?"
        r"(?:\s*(?:NO\.?|NUM(?:BER)?|#))?\s*[:#=\-]?\s*(?:[A-Z]{0,3}\d[A-Z0-9\-]*|[A-Z]\b)?",
        re.IGNORECASE,
    ),
    # Short labels that are also ordinary words (MR is a modality): only with a number.
    re.compile(
        r"\b(?:MR|ID|PID|ACC|CASE|CHART|PATIENT|PT|HOSP|NO)\s*(?:NO\.?|NUM(?:BER)?|#)?"
        r"\s*[:#=\-]?\s*\d[A-Z0-9\-]*",
        re.IGNORECASE,
    ),
    # Long digit runs (identifiers, compact dates) and years.
    re.compile(r"\d{5,}"),
    re.compile(r"\b(?:19|20)\d{2}\b"),
]

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_TECHNICAL = re.compile(
    r"^(?:\d{1,4}(?:\.\d{1,4})?(?:mm|cm|ml|mg|kv|kvp|mas|ma|sec|s|x|d|deg|mci|mbq|t|v|min|h)?"
    r"|[a-z]{1,2}\d{1,3}[a-z]?|\d{1,2}[a-z]{1,2}\d{1,2})$",
    re.IGNORECASE,
)
# Titles always name the person after them. DR, MR and MS are also modality and disease
# abbreviations, so in capitals without a full stop they are titles only before an unknown
# word ("DR CHEST" is digital radiography; "DR SMITH" a doctor).
_TITLES = frozenset({"doctor", "mrs", "miss", "mx", "prof", "professor", "nurse", "sister"})
_AMBIGUOUS_TITLES = frozenset({"dr", "mr", "ms"})
# Words after which unknown words are a person's name.
_INTRODUCERS = frozenset(
    {
        "pt",
        "pat",
        "patient",
        "per",
        "by",
        "attn",
        "ref",
        "referred",
        "referring",
        "requested",
        "ordered",
        "name",
        "for",
        "from",
        "physician",
        "consultant",
        "surgeon",
        "tech",
        "technologist",
        "radiographer",
        "operator",
    }
)

# Radiology words a descriptor may consist of, lower case (one string: easier to read).
_VOCABULARY_TEXT = """
    a an and or of the to in on at for with without w wo no non not plus only via vs versus
    per from by as is then each all any both other others same new old

    ct cta ctv cxr dx cr xr xray x ray rx mr mri mra mrv us usg ultrasound sono doppler nm pet
    pt spect mg mammo mammogram mammography tomo tomosynthesis xa rf fluoro fluoroscopy dexa dxa
    dr plain film films radiograph radiographs radiography angio angiogram angiography
    venogram arteriogram myelogram arthrogram cholangiogram urogram esophagram swallow barium
    enema ivp ercp mrcp hsg scan scans scout topogram localizer localiser loc survey

    head brain skull face facial sinus sinuses orbit orbits iac iacs temporal mastoid mastoids
    pituitary sella neck soft tissue tissues cervical thoracic lumbar sacral sacrum coccyx
    spine spinal cspine tspine lspine c t l s chest thorax thoracic lung lungs pulmonary
    mediastinum mediastinal heart cardiac coronary coronaries aorta aortic abdomen abdominal abd
    pelvis pelvic abdo kub hip hips knee knees ankle ankles foot feet toe toes hand hands
    finger fingers thumb wrist wrists elbow elbows shoulder shoulders humerus femur tibia
    fibula forearm leg legs arm arms thigh calf extremity extremities limb limbs liver hepatic
    kidney kidneys renal bladder prostate pancreas pancreatic spleen adrenal adrenals bowel
    colon rectum small large stomach gastric esophagus oesophagus bile biliary gallbladder gb
    uterus ovary ovaries ovarian scrotum scrotal testes testicular thyroid parotid salivary
    breast breasts axilla axillary rib ribs clavicle clavicles scapula sternum pectus bone
    bones joint joints whole body wb total skeletal skeleton vascular venous arterial artery
    arteries vein veins portal carotid carotids vertebral circle willis jugular femoral iliac
    popliteal renal mesenteric pulmonary airway airways trachea larynx pharynx nasal nose jaw
    mandible maxilla tmj dental teeth eye eyes globe inner ear ears

    pa ap lat lateral lt rt left right bilateral bilat obl oblique oblq decub decubitus dec
    supine erect upright prone standing sitting semi portable port mobile bedside frontal
    axial ax sagittal sag coronal cor transverse trans view views vw single one two three four
    five six first second third dual multi multiple inspiration expiration insp exp inspiratory
    expiratory lordotic apical swimmers cross table lat lateral weight bearing wt stress
    flexion extension flex ext rotation internal external

    recon recons reconstruction reconstructions reformat reformats mpr mip minip vr vrt
    volume rendering thin thick slice slices series phase phases arterial delayed early late
    pre post contrast con iv oral enhanced unenhanced enh noncon noncontrast nc dynamic
    bolus tracking timing test perfusion diffusion dwi adc swi gre tse fse stir flair fat sat
    fs water spgr mprage bold dti tof pc cine tagging lge t1w t2w pd pdw hr hrct ldct lowdose
    low dose high resolution standard std sharp smooth soft detail lung bone window kernel
    filter helical spiral sequential seq sequence sequences iterative asir idose safire admire
    model based dual energy spectral calcium score scoring mm cm

    routine protocol screening screen limited complete comp focused targeted min max initial
    repeat additional addl extra follow up fu followup surveillance staging restaging
    baseline study exam examination exams img image images imaging report dose summary info
    derived primary original secondary adult adults child children pediatric paediatric peds
    paeds infant neonatal neonate newborn trauma stroke code alert emergency urgent stat er ed
    icu nicu or theatre inpatient outpatient opd ward

    eval evaluation assess assessment rule out ro r o query possible suspected suspect
    history hx pain cough fever sob shortness breath dyspnea dyspnoea hemoptysis injury fall
    mass masses nodule nodules pneumonia effusion effusions pneumothorax ptx edema oedema
    atelectasis cardiomegaly infiltrate infiltrates infiltration consolidation emphysema
    fibrosis pleural thickening hernia fracture fractures fx finding findings normal
    abnormal acute chronic cancer carcinoma tumor tumour lesion lesions metastasis metastases
    mets infection obstruction embolism embolus pe dvt aneurysm dissection bleed hemorrhage
    haemorrhage ich sah appendicitis stone stones calculus calculi colic cholecystitis
    pancreatitis diverticulitis sbo obstruction free air foreign fb tube tubes line lines
    placement catheter picc ett ngt ng og peg drain drains chest port pacemaker icd device
    position positioning check biopsy guided guidance drainage aspiration injection needle
    procedure intervention interventional ablation embolization stent stenting
"""
VOCABULARY = frozenset(_VOCABULARY_TEXT.split())


def _is_word_known(word: str) -> bool:
    lower = word.lower()
    if lower in VOCABULARY or len(word) == 1 or _TECHNICAL.match(word):
        return True
    # CamelCase protocol names read part by part (AThoraxRoutine, ThoraxRoutine); letters
    # and digits mixed are technical tokens or nothing (A0002 is an identifier).
    parts = _CAMEL.findall(word) if word.isalpha() else []
    if len(parts) > 1:
        return all(p.lower() in VOCABULARY or len(p) == 1 or _TECHNICAL.match(p) for p in parts)
    return False


def _is_name_like(word: str) -> bool:
    return word.isalpha() and not _is_word_known(word)


def _is_name_part(tokens: list[tuple[int, int, str]], index: int) -> bool:
    """Whether the token at ``index`` continues a name: an unknown word, or an initial
    followed by one ("A Smith", "J. R. Smith")."""
    word = tokens[index][2]
    if _is_name_like(word):
        return True
    if len(word) == 1 and word.isalpha():
        return index + 1 < len(tokens) and _is_name_part(tokens, index + 1)
    return False


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _remove_patterns(text: str) -> str:
    for pattern in _REMOVED:
        for match in reversed(list(pattern.finditer(text))):
            if match.end() > match.start():
                text = _blank(text, match.start(), match.end())
    return text


def _remove_names(text: str, identifying_words: frozenset[str]) -> str:
    tokens = [(m.start(), m.end(), m.group().rstrip(".")) for m in _TOKEN.finditer(text)]
    removed: set[int] = set()
    index = 0
    while index < len(tokens):
        start, end, word = tokens[index]
        lower = word.lower()
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        with_stop = end < len(text) and text[end] == "."
        is_title = lower in _TITLES or (
            lower in _AMBIGUOUS_TITLES
            and following is not None
            and (with_stop or not word.isupper() or _is_name_like(following[2]))
        )
        if is_title and following is not None:
            removed.update({index, index + 1})
            index += 2
            while index < len(tokens) and _is_name_part(tokens, index):
                removed.add(index)
                index += 1
            continue
        if lower in _INTRODUCERS and following is not None:
            after = following[2].lower()
            if after in _TITLES or after in _AMBIGUOUS_TITLES or _is_name_part(tokens, index + 1):
                removed.add(index)
                index += 1
                if after in _TITLES or after in _AMBIGUOUS_TITLES:
                    continue  # the title's own rule takes the name
                while index < len(tokens) and _is_name_part(tokens, index):
                    removed.add(index)
                    index += 1
                continue
        if lower in identifying_words:
            removed.add(index)
        index += 1
    for position in sorted(removed, reverse=True):
        start, end, _ = tokens[position]
        if end < len(text) and text[end] == ".":
            end += 1
        text = _blank(text, start, end)
    return text


def _tidy(text: str) -> str:
    text = re.sub(r"\(\s*\)", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.:;)])", r"\1", text)
    text = re.sub(r"([(])\s+", r"\1", text)
    # Separators left dangling where a removed part was: at the ends, or doubled.
    text = re.sub(r"([,:;/\-+&])(\s*[,:;/\-+&])+", r"\1", text)
    return text.strip(" ,.:;/-+&^_#*%'")


def _clean_once(text: str, identifying_words: frozenset[str]) -> str | None:
    text = _remove_patterns(text)
    text = _remove_names(text, identifying_words)
    text = _tidy(text)
    words = [m.group().rstrip(".") for m in _TOKEN.finditer(text)]
    if not words or not all(_is_word_known(word) for word in words):
        return None
    return text


def clean_descriptor(
    value: object, *, identifying_words: frozenset[str] = frozenset()
) -> str | None:
    """The descriptor with identifying parts removed, or None when it must be dropped (the
    rule is in this module's docstring). A cleaned descriptor is clean: cleaning it again
    changes nothing."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        if len(value) != 1:
            return None
        value = value[0]
    text = str(value)
    if len(text) > MAX_LENGTH or not _PLAIN.match(text):
        return None
    if not text.strip():
        return None
    # Removing one part can expose another (a name after a removed identifier): repeat until
    # nothing changes, so what is stored passes the same check on the way out.
    for _ in range(4):
        cleaned = _clean_once(text, identifying_words)
        if cleaned is None or cleaned == text:
            return cleaned
        text = cleaned
    return None


def is_clean_descriptor(value: object, *, identifying_words: frozenset[str] = frozenset()) -> bool:
    """Whether a descriptor may be kept exactly as it is (cleaning would change nothing)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    return clean_descriptor(value, identifying_words=identifying_words) == str(value)
