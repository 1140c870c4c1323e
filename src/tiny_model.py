"""Build a tiny random-weight Llama model that vLLM can serve on the CPU.

Nothing is downloaded: the tokenizer is trained here, from a small built-in
English word list, by the ``tokenizers`` library, and the weights are drawn at
random with a fixed seed. The result is only good for exercising the serving
path (start-up, streaming, caching, errors); its text is a readable jumble of
whole words and word pieces.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "build_tiny_model",
    "default_tiny_model_dir",
    "ensure_default_tiny_model",
    "is_tiny_model_dir",
]

# head_dim must be 64: the CPU attention kernel rejects smaller heads.
_HIDDEN_SIZE = 128
_NUM_HEADS = 2
_NUM_LAYERS = 2
_MAX_POSITIONS = 512
_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
_MARKER = "tiny-model.json"

_WORDS = """
the of and to in is was for on that with as by at from his her it an were are
which this be or has had not but what all when there can more if no one about
so out up into them then some these time would like only other new people could
first than been who its now made over did down after many use two way work each
day year good place great well long little very still world back life house where
just under name same right think also around another came three high come most
every much before through line between small set old put end does large often
water found light again school change play spell air away animal home point page
letter mother answer study learn should america green river city tree cross farm
hard start might story saw far sea draw left late run while press close night real
few north open seem together next white children begin got walk example ease paper
group always music those both mark book carry took science eat room friend began
idea fish mountain stop once base hear horse cut sure watch color face wood main
enough plain girl usual young ready above ever red list though feel talk bird soon
body dog family direct pose leave song measure door product black short numeral
class wind question happen complete ship area half rock order fire south problem
piece told knew pass since top whole king space heard best hour better true during
hundred five remember step early hold west ground interest reach fast verb sing
listen six table travel less morning ten simple several vowel toward war lay against
pattern slow center love person money serve appear road map rain rule govern pull
cold notice voice unit power town fine certain fly fall lead cry dark machine note
wait plan figure star box noun field rest correct able pound done beauty drive stood
contain front teach week final gave green quick develop ocean warm free minute
strong special mind behind clear tail produce fact street inch multiply nothing
course stay wheel full force blue object decide surface deep moon island foot system
busy test record boat common gold possible plane stead dry wonder laugh thousand ago
ran check game shape equate miss brought heat snow tire bring yes distant fill east
paint language among grand ball yet wave drop heart present heavy dance engine
position arm wide sail material size vary settle speak weight general ice matter
circle pair include divide syllable felt perhaps pick sudden count square reason
length represent art subject region energy hunt probable bed brother egg ride cell
believe fraction forest sit race window store summer train sleep prove lone leg
exercise wall catch mount wish sky board joy winter sat written wild instrument kept
glass grass cow job edge sign visit past soft fun bright gas weather month million
bear finish happy hope flower clothe strange gone jump baby eight village meet root
buy raise solve metal whether push seven paragraph third shall held hair describe
cook floor either result burn hill safe cat century consider type law bit coast copy
phrase silent tall sand soil roll temperature finger industry value fight lie beat
excite natural view sense ear else quite broke case middle kill son lake moment scale
loud spring observe child straight consonant nation dictionary milk speed method organ
pay age section dress cloud surprise quiet stone tiny climb cool design poor lot
experiment bottom key iron single stick flat twenty skin smile crease hole trade
melody trip office receive row mouth exact symbol die least trouble shout except
wrote seed tone join suggest clean break lady yard rise bad blow oil blood touch grew
cent mix team wire cost lost brown wear garden equal sent choose fell fit flow fair
bank collect save control decimal gentle woman captain practice separate difficult
doctor please protect noon whose locate ring character insect caught period indicate
radio spoke atom human history effect electric expect crop modern element hit student
corner party supply bone rail imagine provide agree thus capital chair danger fruit
rich thick soldier process operate guess necessary sharp wing create neighbor wash
bat rather crowd corn compare poem string bell depend meat rub tube famous dollar
stream fear sight thin triangle planet hurry chief colony clock mine tie enter major
fresh search send yellow gun allow print dead spot desert suit current lift rose
continue block chart hat sell success company subtract event particular deal swim
term opposite wife shoe shoulder spread arrange camp invent cotton born determine
quart nine truck noise level chance gather shop stretch throw shine property column
molecule select wrong gray repeat require broad prepare salt nose plural anger claim
continent oxygen sugar death pretty skill women season solution magnet silver thank
branch match suffix especially fig afraid huge sister steel discuss forward similar
guide experience score apple bought led pitch coat mass card band rope slip win dream
evening condition feed tool total basic smell valley nor double seat arrive master
track parent shore division sheet substance favor connect post spend chord fat glad
original share station dad bread charge proper bar offer segment slave duck instant
market degree populate chick dear enemy reply drink occur support speech nature range
steam motion path liquid log meant quotient teeth shell neck
"""


def default_tiny_model_dir() -> Path:
    """Where the CLI keeps its tiny model when no folder is named."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "enhanced-vllm" / "tiny-llama"


def ensure_default_tiny_model() -> Path:
    """The CLI's tiny model folder, built there first if it is not complete."""
    import sys

    path = default_tiny_model_dir()
    if not is_tiny_model_dir(path):
        print(f"building the tiny model in {path} (once) ...", file=sys.stderr)
        build_tiny_model(path)
    return path


def is_tiny_model_dir(path: Path) -> bool:
    """Whether ``path`` holds a complete model written by :func:`build_tiny_model`."""
    return (path / _MARKER).is_file() and (path / "config.json").is_file()


def _corpus(seed: int) -> list[str]:
    words = _WORDS.split()
    rng = random.Random(seed)
    # Sentences of shuffled words: enough text for BPE to learn whole words
    # and common pieces, with punctuation as separate tokens.
    return [
        " ".join(rng.choice(words) for _ in range(rng.randint(6, 16))) + rng.choice(".?!")
        for _ in range(4000)
    ]


def _train_tokenizer(out_dir: Path, vocab_size: int, seed: int) -> int:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # The suffix marks the end of a word, so decoding puts spaces back between
    # words and glues pieces of one word together: text stays readable.
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL_TOKENS,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=_MAX_POSITIONS,
    )
    fast.save_pretrained(str(out_dir))
    return tok.get_vocab_size()


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, vocab_size: int = 2048) -> Path:
    """Write a tiny random-weight Llama model and its tokenizer into ``out_dir``.

    Args:
        out_dir: Folder to write; created if missing. Existing model files in it
            are overwritten.
        seed: Seed for the tokenizer corpus and the weights, so that two builds
            with the same seed are identical.
        vocab_size: Upper bound of the tokenizer's vocabulary; the model's
            embedding matches the size the tokenizer actually learns.

    Returns:
        The folder, ready for ``vllm`` (``model=str(path)``).
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / _MARKER).unlink(missing_ok=True)

    learned_vocab = _train_tokenizer(path, vocab_size, seed)
    config = LlamaConfig(
        vocab_size=learned_vocab,
        hidden_size=_HIDDEN_SIZE,
        intermediate_size=4 * _HIDDEN_SIZE,
        num_hidden_layers=_NUM_LAYERS,
        num_attention_heads=_NUM_HEADS,
        num_key_value_heads=_NUM_HEADS,
        max_position_embeddings=_MAX_POSITIONS,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    # bfloat16 is what vLLM picks on the CPU for dtype="auto"; storing it avoids a cast.
    model = LlamaForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]
    model.save_pretrained(str(path), safe_serialization=True)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=3).save_pretrained(str(path))
    (path / _MARKER).write_text(
        json.dumps({"seed": seed, "vocab_size": learned_vocab, "layers": _NUM_LAYERS}) + "\n"
    )
    logger.info("Wrote tiny model (vocab %d) to %s", learned_vocab, path)
    return path
