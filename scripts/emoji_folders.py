"""Builds an image-folder dataset of emoji drawings from Debian's emoji packages.

One class per Unicode emoji subgroup ("animal-mammal", "food-fruit", "transport-ground", ...), one
image per emoji and artwork: Noto Color Emoji and Symbola (rendered with Pillow), EmojiOne 3
(ruby-gemojione) and emojify.js (libjs-emojify) PNGs. The same emoji drawn by different artists
makes a class a concept rather than a style, which is what a source model for fine-tuning on
drawings and photos of objects should learn. docs/FINETUNING.md pretrains on it.

    apt-get install unicode-data fonts-noto-color-emoji fonts-symbola ruby-gemojione libjs-emojify
    python3 scripts/emoji_folders.py ~/emoji
"""

import argparse
import collections
import glob
import json
import os
import sys

from PIL import Image, ImageChops, ImageDraw, ImageFont

EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
NOTO = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
SYMBOLA = "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"
GEMOJIONE = "/usr/share/rubygems-integration/all/gems/gemojione-3.3.0"
EMOJIFY = "/usr/share/javascript/emojify.js/images/emoji"
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
VARIATION_SELECTOR = "\ufe0f"
SIZE = 128


def base_emoji_subgroups() -> dict[str, str]:
    """Fully-qualified emoji without skin tones -> subgroup, keyed without variation selectors."""
    subgroups, subgroup = {}, None
    with open(EMOJI_TEST, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("# subgroup:"):
                # "sky & weather" -> "sky-and-weather": folder names without spaces
                subgroup = line.split(":", 1)[1].strip().replace(" & ", "-and-")
            elif "; fully-qualified" in line:
                emoji = "".join(chr(int(c, 16)) for c in line.split(";")[0].split())
                if not SKIN_TONES & set(emoji):
                    subgroups[emoji.replace(VARIATION_SELECTOR, "")] = subgroup
    return subgroups


def rendered(font, text, embedded_color) -> Image.Image | None:
    image = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((8, 8), text, font=font, embedded_color=embedded_color,
                               fill=None if embedded_color else "black")
    box = image.getbbox()
    return None if box is None else image.crop(box)


def squared(image: Image.Image) -> Image.Image:
    """Scales an RGBA image to fit SIZE x SIZE and centres it on a transparent square."""
    image = image.convert("RGBA")
    scale = SIZE / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    canvas.paste(image, ((SIZE - image.width) // 2, (SIZE - image.height) // 2))
    return canvas


def font_images(subgroups):
    noto = ImageFont.truetype(NOTO, 109)  # its bitmaps exist at this size only
    symbola = ImageFont.truetype(SYMBOLA, 96)
    missing = rendered(symbola, "\U000F0000", False)  # a private-use code point: no glyph
    for emoji in subgroups:
        image = rendered(noto, emoji, True)
        if image is not None:
            yield "noto", emoji, image
        if len(emoji) == 1:  # Symbola draws single code points; sequences come apart
            image = rendered(symbola, emoji, False)
            if image is not None and (missing is None or image.size != missing.size
                                      or ImageChops.difference(image, missing).getbbox()):
                yield "symbola", emoji, image


def file_images(subgroups):
    with open(os.path.join(GEMOJIONE, "config", "index.json"), encoding="utf-8") as index:
        entries = json.load(index).values()
    by_shortname = {}
    for entry in entries:
        for name in [entry["shortname"], *entry["aliases"]]:
            by_shortname[name.strip(":")] = entry["moji"].replace(VARIATION_SELECTOR, "")
    for path in glob.glob(os.path.join(GEMOJIONE, "assets", "png", "*.png")):
        codes = os.path.basename(path)[:-4].split("-")
        emoji = "".join(chr(int(c, 16)) for c in codes).replace(VARIATION_SELECTOR, "")
        if emoji in subgroups:
            yield "emojione", emoji, Image.open(path).convert("RGBA")
    for path in glob.glob(os.path.join(EMOJIFY, "*.png")):
        emoji = by_shortname.get(os.path.basename(path)[:-4])
        if emoji in subgroups:
            yield "emojify", emoji, Image.open(path).convert("RGBA")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--min_images", type=int, default=30,
                        help="subgroups with fewer images are left out")
    args = parser.parse_args(argv)
    missing = [path for path in (EMOJI_TEST, NOTO, SYMBOLA, GEMOJIONE, EMOJIFY)
               if not os.path.exists(path)]
    if missing:
        sys.exit(f"emoji_folders: error: {', '.join(missing)} missing; install unicode-data "
                 "fonts-noto-color-emoji fonts-symbola ruby-gemojione libjs-emojify")
    subgroups = base_emoji_subgroups()
    # One image per artwork and emoji: emojify.js ships some emoji under two names (aliases),
    # and the last one read is kept.
    drawn = {(artwork, emoji): image
             for artwork, emoji, image in [*font_images(subgroups), *file_images(subgroups)]}
    images = collections.defaultdict(list)
    for (artwork, emoji), image in drawn.items():
        images[subgroups[emoji]].append((artwork, emoji, squared(image)))
    kept = {name: found for name, found in images.items() if len(found) >= args.min_images}
    for name, found in sorted(kept.items()):
        os.makedirs(os.path.join(args.out_dir, name), exist_ok=True)
        for artwork, emoji, image in found:
            codes = "-".join(f"{ord(c):x}" for c in emoji)
            image.save(os.path.join(args.out_dir, name, f"{artwork}_{codes}.png"))
    counts = collections.Counter(artwork for found in kept.values() for artwork, _, _ in found)
    print(f"{sum(counts.values())} images in {len(kept)} classes ({dict(counts)}); "
          f"{len(images) - len(kept)} subgroups under {args.min_images} images left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
