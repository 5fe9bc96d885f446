"""scripts/emoji_folders.py (the fine-tuning experiment's source dataset): reading the emoji list."""

import importlib.util
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "emoji_folders.py")

# Lines in the format of Unicode's emoji-test.txt (unicode-data's copy).
EMOJI_TEST = """\
# group: Animals & Nature
# subgroup: animal-mammal
1F436                                                  ; fully-qualified     # 🐶 E0.6 dog face
1F415 200D 1F9BA                                       ; fully-qualified     # 🐕‍🦺 E12.0 service dog
# subgroup: sky & weather
2600 FE0F                                              ; fully-qualified     # ☀️ E0.6 sun
2600                                                   ; unqualified         # ☀ E0.6 sun
# group: People & Body
# subgroup: hand-fingers-open
1F44B                                                  ; fully-qualified     # 👋 E0.6 waving hand
1F44B 1F3FB                                            ; fully-qualified     # 👋🏻 E1.0 waving hand: light skin tone
"""


def load_script():
    spec = importlib.util.spec_from_file_location("emoji_folders", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_subgroups_are_read_without_skin_tones_or_variation_selectors(tmp_path, monkeypatch):
    emoji_folders = load_script()
    emoji_test = tmp_path / "emoji-test.txt"
    emoji_test.write_text(EMOJI_TEST, encoding="utf-8")
    monkeypatch.setattr(emoji_folders, "EMOJI_TEST", str(emoji_test))
    assert emoji_folders.base_emoji_subgroups() == {
        "\U0001F436": "animal-mammal",
        "\U0001F415\u200d\U0001F9BA": "animal-mammal",
        "\u2600": "sky-and-weather",
        "\U0001F44B": "hand-fingers-open",
    }


def test_missing_packages_are_named(tmp_path, monkeypatch):
    emoji_folders = load_script()
    monkeypatch.setattr(emoji_folders, "NOTO", str(tmp_path / "absent.ttf"))
    with pytest.raises(SystemExit) as exit_:
        emoji_folders.main([str(tmp_path / "out")])
    message = str(exit_.value.code)
    assert "absent.ttf" in message and "fonts-noto-color-emoji" in message
    assert not (tmp_path / "out").exists()
