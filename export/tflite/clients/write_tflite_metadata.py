"""Write TFLite model metadata with tflite-support's generic metadata writer.

Runs inside .venv-tflite-support (tflite-support 0.4.4 pins protobuf<4, which breaks the main
environment), driven by deepproduct.export.tflite_metadata. Usage:

    python write_tflite_metadata.py REQUEST.json REPLY.json

tflite-support 0.4.4 has no image-embedder writer, so the generic
``MetadataWriter.create_from_metadata_info`` is used with an image input (RGB, the normalisation
the request names -- deepproduct.export.tflite_metadata.NORMALISATION, mean 0 / std 255: the graph
takes [0, 1] and normalises inside) and a named float output. The
written file is read back with ``MetadataDisplayer`` and the reply carries that JSON.
"""

import json
import sys

from tensorflow_lite_support.metadata import metadata_schema_py_generated as md_fb
from tensorflow_lite_support.metadata import schema_py_generated as schema_fb
from tensorflow_lite_support.metadata.python import metadata
from tensorflow_lite_support.metadata.python.metadata_writers import metadata_info, metadata_writer


def main(request_path: str, reply_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        req = json.load(f)
    with open(req["model_in"], "rb") as f:
        buf = bytearray(f.read())
    general = metadata_info.GeneralMd(name=req["name"], version=req["version"],
                                      description=req["description"], author=req["author"],
                                      licenses=req["license"])
    image = metadata_info.InputImageTensorMd(
        name=req["input_name"], description=req["input_description"], norm_mean=req["norm_mean"], norm_std=req["norm_std"],
        color_space_type=md_fb.ColorSpaceType.RGB, tensor_type=schema_fb.TensorType.FLOAT32)
    embedding = metadata_info.TensorMd(name=req["output_name"], description=req["output_description"])
    writer = metadata_writer.MetadataWriter.create_from_metadata_info(
        buf, general_md=general, input_md=[image], output_md=[embedding])
    populated = writer.populate()
    with open(req["model_out"], "wb") as f:
        f.write(populated)
    displayer = metadata.MetadataDisplayer.with_model_file(req["model_out"])
    reply = {"metadata_json": json.loads(displayer.get_metadata_json()),
             "associated_files": displayer.get_packed_associated_file_list()}
    with open(reply_path, "w", encoding="utf-8") as f:
        json.dump(reply, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
