"""Family detection from safetensors headers only: recorded real layouts as sparse files, plus
hand-made headers for layouts with no recording here (each says where its keys come from)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.trainer.family import FamilyError, detect, resolve, table_family
from tests.sparse import from_recording, recorded, sdxl_lora, write_sparse

F16 = "F16"


def t(*shape: int, dtype: str = F16) -> dict:
    return {"dtype": dtype, "shape": list(shape)}


def test_recorded_sd15_checkpoint_is_sd1(tmp_path: Path) -> None:
    found = detect(from_recording("sd15", tmp_path / "random_sd15.safetensors"))
    assert (found.kind, found.family, found.tensors) == ("checkpoint", "sd1", 1130)
    assert found.trainable and found.problem() is None
    assert found.describe().startswith("SD 1.x (1130 tensors, 2.1 GB")


def test_recorded_sdxl_checkpoint_is_sdxl_and_is_not_read(tmp_path: Path) -> None:
    path = from_recording("sdxl", tmp_path / "random_sdxl.safetensors")
    assert path.stat().st_size > 6_900_000_000 and path.stat().st_blocks * 512 < 10_000_000  # sparse
    found = detect(path)
    assert (found.kind, found.family, found.tensors, found.v_pred) == ("checkpoint", "sdxl", 2514, False)
    assert found.trainable and found.describe() == "SDXL (2514 tensors, 6.9 GB)"


def test_recorded_sd15_lora_given_as_base_model_is_called_a_lora(tmp_path: Path) -> None:
    found = detect(from_recording("lora_sd15", tmp_path / "ember.safetensors"))
    assert (found.kind, found.family) == ("lora", "sd1")
    problem = found.problem()
    assert problem and "is a LoRA for SD 1.x, not a base checkpoint" in problem
    assert str(tmp_path / "ember.safetensors") in problem and "ss_base_model_version = sd_v1" in problem


def test_recorded_sdxl_lora_is_a_lora_for_sdxl(tmp_path: Path) -> None:
    found = detect(sdxl_lora(tmp_path / "rec_sdxl_v1.safetensors"))
    assert (found.kind, found.family, found.tensors) == ("lora", "sdxl", 2166)


def test_sdxl_lora_without_metadata_is_told_by_its_sgm_names(tmp_path: Path) -> None:
    path = tmp_path / "bare.safetensors"
    write_sparse(path, {"lora_unet_input_blocks_4_1_proj_in.alpha": t(dtype="F32"),
                        "lora_unet_input_blocks_4_1_proj_in.lora_down.weight": t(8, 640, dtype="F32"),
                        "lora_unet_input_blocks_4_1_proj_in.lora_up.weight": t(640, 8, dtype="F32")}, None)
    found = detect(path)
    assert (found.kind, found.family) == ("lora", "sdxl") and "SGM" in found.notes[0]


def test_sd2_is_told_and_says_v_prediction_cannot_be(tmp_path: Path) -> None:
    # SD 2.x keys (no recording here): sd-scripts model_util.convert_ldm_clip_checkpoint_v2 reads the
    # OpenCLIP-H text encoder under cond_stage_model.model. (token_embedding [49408, 1024],
    # transformer.resblocks.N.attn.in_proj_weight [3072, 1024]); the U-Net is SD1's with context_dim 1024.
    sd15 = recorded("sd15")["tensors"]
    tensors = {k: v for k, v in sd15.items() if not k.startswith("cond_stage_model.")}
    tensors["cond_stage_model.model.token_embedding.weight"] = t(49408, 1024)
    tensors["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] = t(3072, 1024)
    found = detect(write_sparse(tmp_path / "sd21.safetensors", tensors, {"format": "pt"}))
    assert (found.kind, found.family, found.v_pred) == ("checkpoint", "sd2", None)
    assert found.trainable and "v_parameterization" in found.describe()


def test_sdxl_v_pred_marker_is_reported(tmp_path: Path) -> None:
    # checkpoint_keys.json family_rules: v-pred SDXL fine-tunes carry a 'v_pred' marker key.
    tensors = dict(recorded("sdxl")["tensors"])
    tensors["v_pred"] = t(0)
    found = detect(write_sparse(tmp_path / "noob_vpred.safetensors", tensors, None))
    assert found.family == "sdxl" and found.v_pred is True and "v_parameterization = true" in found.describe()


def test_flux_checkpoint_is_refused_naming_the_flux_trainer(tmp_path: Path) -> None:
    # Black Forest Labs' flux1-dev.safetensors layout (flux/model.py; ComfyUI model_detection looks for
    # double_blocks.0.img_attn.norm.key_norm.scale): bare keys, 19 double + 38 single blocks, hidden 3072.
    tensors = {"img_in.weight": t(3072, 64), "time_in.in_layer.weight": t(3072, 256),
               "guidance_in.in_layer.weight": t(3072, 256),
               "double_blocks.0.img_attn.qkv.weight": t(9216, 3072),
               "double_blocks.0.img_attn.norm.key_norm.scale": t(128),
               "single_blocks.0.linear1.weight": t(21504, 3072), "final_layer.linear.weight": t(64, 3072)}
    found = detect(write_sparse(tmp_path / "flux1-dev.safetensors", tensors, None))
    assert (found.kind, found.family, found.trainable) == ("checkpoint", "flux", False)
    problem = found.problem()
    assert problem and "Flux.1" in problem and "flux_train_network.py" in problem and "flux1-dev" in problem


def test_flux_in_comfyui_single_file_layout_too(tmp_path: Path) -> None:
    # ComfyUI's "checkpoint" Flux files put the transformer under model.diffusion_model.
    tensors = {"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": t(9216, 3072),
               "model.diffusion_model.single_blocks.0.linear1.weight": t(21504, 3072)}
    assert detect(write_sparse(tmp_path / "f.safetensors", tensors, None)).family == "flux"


def test_sd3_checkpoint_is_refused_naming_the_sd3_trainer(tmp_path: Path) -> None:
    # sd3_medium_incl_clips.safetensors layout (SAI's MMDiT, ComfyUI model_detection checks
    # joint_blocks.0.context_block.attn.qkv.weight): model.diffusion_model.joint_blocks.N.{context,x}_block.
    tensors = {"model.diffusion_model.x_embedder.proj.weight": t(1536, 16, 2, 2),
               "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": t(4608, 1536),
               "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": t(4608, 1536),
               "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight": t(49408, 768)}
    found = detect(write_sparse(tmp_path / "sd3_medium.safetensors", tensors, None))
    assert found.family == "sd3" and not found.trainable
    assert "sd3_train_network.py" in (found.problem() or "")


def test_sdxl_refiner_is_refused(tmp_path: Path) -> None:
    # checkpoint_keys.json family_rules (from ComfyUI supported_models.SDXLRefiner): bigG only under embedders.0.
    tensors = {k: v for k, v in recorded("sdxl")["tensors"].items() if not k.startswith("conditioner.")}
    tensors["conditioner.embedders.0.model.token_embedding.weight"] = t(49408, 1280)
    found = detect(write_sparse(tmp_path / "refiner.safetensors", tensors, None))
    assert found.family == "sdxl_refiner" and "SDXL refiner" in (found.problem() or "")


def test_inpainting_unet_is_refused(tmp_path: Path) -> None:
    tensors = dict(recorded("sd15")["tensors"])
    tensors["model.diffusion_model.input_blocks.0.0.weight"] = t(320, 9, 3, 3)
    found = detect(write_sparse(tmp_path / "inpaint.safetensors", tensors, None))
    assert found.family == "sd1" and not found.trainable and "inpainting" in (found.problem() or "")


def test_vae_and_unknown_files(tmp_path: Path) -> None:
    vae = {k[len("first_stage_model."):]: v for k, v in recorded("sd15")["tensors"].items()
           if k.startswith("first_stage_model.")}
    found = detect(write_sparse(tmp_path / "vae.safetensors", vae, None))
    assert found.kind == "vae" and "VAE only" in (found.problem() or "")
    other = detect(write_sparse(tmp_path / "other.safetensors", {"w": t(4, 4)}, None))
    assert other.kind == "unknown" and 'family = "sd1"' in (other.problem() or "")


def test_diffusers_folder_is_recognised_and_refused(tmp_path: Path) -> None:
    folder = tmp_path / "animagine-xl"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    found = detect(folder)
    assert (found.kind, found.family) == ("diffusers", "sdxl")
    problem = found.problem() or ""
    assert "Diffusers folder (SDXL)" in problem and "single-file" in problem
    with pytest.raises(FamilyError, match="without model_index"):
        detect(tmp_path)


def test_not_safetensors_gives_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}     ")
    with pytest.raises(FamilyError, match="not a readable safetensors file"):
        detect(bad)
    with pytest.raises(FamilyError, match="cannot be read"):
        detect(tmp_path / "missing.safetensors")
    pickled = tmp_path / "old.ckpt"
    pickled.write_bytes(b"PK")
    found = detect(pickled)
    assert found.kind == "unknown" and "pickled .ckpt" in (found.problem() or "")
    assert resolve(found, "sdxl", "[training]") == "sdxl"  # the table vouches for what the file cannot tell


def test_table_family_that_disagrees_with_the_file_names_both(tmp_path: Path) -> None:
    found = detect(from_recording("sdxl", tmp_path / "anythingXL.safetensors"))
    assert resolve(found, None, "x") == "sdxl" and resolve(found, "sdxl", "x") == "sdxl"
    with pytest.raises(FamilyError) as error:
        resolve(found, table_family({"family": "sd15"}, "c.toml [training]"), "c.toml [training]")
    text = str(error.value)
    assert "c.toml [training] says family = SD 1.x" in text and "anythingXL.safetensors is SDXL" in text


def test_table_family_names(tmp_path: Path) -> None:
    assert table_family({"family": "Illustrious"}, "s") == "sdxl" and table_family({}, "s") is None
    assert table_family({"family": "SD1.5"}, "s") == "sd1"
    with pytest.raises(FamilyError, match="'flux' is not one this tool trains"):
        table_family({"family": "flux"}, "s")
