"""The language registry: every language the pipeline can prepare, prompt for, translate into and check.

One row per language, keyed by its ISO 639-1 code (the code of MLQA-style file names and of
``languages`` in params.yaml): its English name (the prompt ``Generate a {Language} question for
this passage: ...``), its NLLB-200 code (FLORES-200: language_Script), its M2M100 code (None where
M2M100 lacks the language) and the Unicode script(s) its text is written in (the "in script"
measure of generation quality). Covered: MLQA's seven, XOR-TyDi's, XQuAD's, MKQA's and a few more,
all supported by multilingual-e5 / XLM-R and by NLLB-200.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Language:
    code: str                 # ISO 639-1
    name: str                 # English name, as in the generation prompt
    nllb: str                 # NLLB-200 / FLORES-200 code
    m2m100: str | None        # M2M100 code (None: M2M100 lacks the language)
    scripts: tuple[str, ...]  # Unicode scripts (keys of SCRIPT_RANGES)


# Unicode blocks per script: the bodies of regex character classes. The "in script" measure counts a
# letter as in a language's script when it falls in one of these.
SCRIPT_RANGES = {
    "Latin": r"A-Za-z\u00c0-\u024f\u1e00-\u1eff",
    "Arabic": r"\u0600-\u06ff\u0750-\u077f",
    "Armenian": r"\u0531-\u058f",
    "Bengali": r"\u0980-\u09ff",
    "Cyrillic": r"\u0400-\u052f",
    "Devanagari": r"\u0900-\u097f",
    "Ethiopic": r"\u1200-\u139f",
    "Georgian": r"\u10a0-\u10ff",
    "Greek": r"\u0370-\u03ff\u1f00-\u1fff",
    "Gujarati": r"\u0a80-\u0aff",
    "Gurmukhi": r"\u0a00-\u0a7f",
    "Han": r"\u3400-\u4dbf\u4e00-\u9fff",
    "Hangul": r"\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "Hebrew": r"\u0590-\u05ff\ufb1d-\ufb4f",
    "Hiragana": r"\u3040-\u309f",
    "Kannada": r"\u0c80-\u0cff",
    "Katakana": r"\u30a0-\u30ff\u31f0-\u31ff",
    "Khmer": r"\u1780-\u17ff\u19e0-\u19ff",
    "Lao": r"\u0e80-\u0eff",
    "Malayalam": r"\u0d00-\u0d7f",
    "Myanmar": r"\u1000-\u109f",
    "Sinhala": r"\u0d80-\u0dff",
    "Tamil": r"\u0b80-\u0bff",
    "Telugu": r"\u0c00-\u0c7f",
    "Thai": r"\u0e00-\u0e7f",
}

_L = ("Latin",)
_ROWS = [
    # MLQA
    ("ar", "Arabic", "arb_Arab", "ar", ("Arabic",)),
    ("de", "German", "deu_Latn", "de", _L),
    ("en", "English", "eng_Latn", "en", _L),
    ("es", "Spanish", "spa_Latn", "es", _L),
    ("hi", "Hindi", "hin_Deva", "hi", ("Devanagari",)),
    ("vi", "Vietnamese", "vie_Latn", "vi", _L),
    ("zh", "Chinese", "zho_Hans", "zh", ("Han",)),
    # XOR-TyDi QA
    ("bn", "Bengali", "ben_Beng", "bn", ("Bengali",)),
    ("fi", "Finnish", "fin_Latn", "fi", _L),
    ("ja", "Japanese", "jpn_Jpan", "ja", ("Han", "Hiragana", "Katakana")),
    ("ko", "Korean", "kor_Hang", "ko", ("Hangul",)),
    ("ru", "Russian", "rus_Cyrl", "ru", ("Cyrillic",)),
    ("te", "Telugu", "tel_Telu", None, ("Telugu",)),
    # XQuAD
    ("el", "Greek", "ell_Grek", "el", ("Greek",)),
    ("ro", "Romanian", "ron_Latn", "ro", _L),
    ("th", "Thai", "tha_Thai", "th", ("Thai",)),
    ("tr", "Turkish", "tur_Latn", "tr", _L),
    # MKQA
    ("da", "Danish", "dan_Latn", "da", _L),
    ("fr", "French", "fra_Latn", "fr", _L),
    ("he", "Hebrew", "heb_Hebr", "he", ("Hebrew",)),
    ("hu", "Hungarian", "hun_Latn", "hu", _L),
    ("it", "Italian", "ita_Latn", "it", _L),
    ("km", "Khmer", "khm_Khmr", "km", ("Khmer",)),
    ("ms", "Malay", "zsm_Latn", "ms", _L),
    ("nl", "Dutch", "nld_Latn", "nl", _L),
    ("no", "Norwegian", "nob_Latn", "no", _L),
    ("pl", "Polish", "pol_Latn", "pl", _L),
    ("pt", "Portuguese", "por_Latn", "pt", _L),
    ("sv", "Swedish", "swe_Latn", "sv", _L),
    # more languages of XLM-R / mE5 and NLLB-200
    ("bg", "Bulgarian", "bul_Cyrl", "bg", ("Cyrillic",)),
    ("ca", "Catalan", "cat_Latn", "ca", _L),
    ("cs", "Czech", "ces_Latn", "cs", _L),
    ("et", "Estonian", "est_Latn", "et", _L),
    ("fa", "Persian", "pes_Arab", "fa", ("Arabic",)),
    ("hr", "Croatian", "hrv_Latn", "hr", _L),
    ("id", "Indonesian", "ind_Latn", "id", _L),
    ("ka", "Georgian", "kat_Geor", "ka", ("Georgian",)),
    ("lt", "Lithuanian", "lit_Latn", "lt", _L),
    ("lv", "Latvian", "lvs_Latn", "lv", _L),
    ("mr", "Marathi", "mar_Deva", "mr", ("Devanagari",)),
    ("sk", "Slovak", "slk_Latn", "sk", _L),
    ("sl", "Slovenian", "slv_Latn", "sl", _L),
    ("sw", "Swahili", "swh_Latn", "sw", _L),
    ("ta", "Tamil", "tam_Taml", "ta", ("Tamil",)),
    ("tl", "Tagalog", "tgl_Latn", "tl", _L),
    ("uk", "Ukrainian", "ukr_Cyrl", "uk", ("Cyrillic",)),
    ("ur", "Urdu", "urd_Arab", "ur", ("Arabic",)),
    ("am", "Amharic", "amh_Ethi", "am", ("Ethiopic",)),
    ("gu", "Gujarati", "guj_Gujr", "gu", ("Gujarati",)),
    ("hy", "Armenian", "hye_Armn", "hy", ("Armenian",)),
    ("kn", "Kannada", "kan_Knda", "kn", ("Kannada",)),
    ("lo", "Lao", "lao_Laoo", "lo", ("Lao",)),
    ("ml", "Malayalam", "mal_Mlym", "ml", ("Malayalam",)),
    ("my", "Burmese", "mya_Mymr", "my", ("Myanmar",)),
    ("pa", "Punjabi", "pan_Guru", "pa", ("Gurmukhi",)),
    ("si", "Sinhala", "sin_Sinh", "si", ("Sinhala",)),
]
LANGUAGES: dict[str, Language] = {row[0]: Language(*row) for row in sorted(_ROWS)}
MLQA = ("ar", "de", "en", "es", "hi", "vi", "zh")
DEFAULT_CORPUS_LANGUAGE = "en"  # data.corpus_language when unset; later stages read the prepared data's own


def supported() -> list[str]:
    """Every supported ISO 639-1 code, sorted."""
    return sorted(LANGUAGES)


def is_supported(code) -> bool:
    return isinstance(code, str) and code in LANGUAGES


def language(code, param: str = "languages") -> Language:
    """The registry row of ``code``; a one-line ConfigError naming ``param`` when it is unknown."""
    if not is_supported(code):
        raise ConfigError(f"{param}: unknown language code {code!r}; supported: {supported()}")
    return LANGUAGES[code]


def check_language(code, param: str = "languages") -> str:
    """``code`` itself, once known to be supported."""
    return language(code, param).code


def name(code, param: str = "languages") -> str:
    return language(code, param).name


def nllb_code(code, param: str = "languages") -> str:
    return language(code, param).nllb


def m2m100_code(code, param: str = "languages") -> str | None:
    return language(code, param).m2m100


def scripts(code, param: str = "languages") -> tuple[str, ...]:
    return language(code, param).scripts


def script_class(code, param: str = "languages") -> str:
    """A regex character class matching one letter of any of ``code``'s scripts."""
    return "[" + "".join(SCRIPT_RANGES[s] for s in scripts(code, param)) + "]"


def check_languages(languages, available=None, param: str = "languages",
                    corpus_language: str | None = None) -> list[str]:
    """Validate a list of language codes (supported by ``xaug.languages``, and present in the archive if
    ``available`` is given). For ``param == "languages"`` (the target languages) and a known
    ``corpus_language`` (see ``corpus_language(data_dir)``), the corpus language is refused."""
    if not isinstance(languages, (list, tuple)) or not languages:
        raise ConfigError(f"{param}: expected a non-empty list of language codes, got {languages!r}")
    for lang in languages:
        check_language(lang, param)
        if available is not None and lang not in available:
            raise ConfigError(f"{param}: language {lang!r} is not in the archive (it has {sorted(available)})")
    if len(set(languages)) != len(languages):
        raise ConfigError(f"{param}: duplicate language codes in {list(languages)}")
    if param == "languages" and corpus_language is not None and corpus_language in languages:
        raise ConfigError(f"languages: {corpus_language!r} is the corpus language; the target languages must differ "
                          "from it (its questions are evaluated anyway, as same-language)")
    return list(languages)
