# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A checkpoint on whole images
#
# What `distilkit predict` does, shown: a checkpoint's keypoints on a few whole images, with
# the crop, flip test, decoding and Eq. 3 rescoring of evaluation (`distilkit.predict`).
# The images: validation scenes of the synthetic set the model was trained on, posed in the
# boxes of the set's simulated detector, and one real photograph of a person that ships with
# scikit-image (`skimage.data.astronaut()`, NASA, public domain), posed as one whole-image box.
#
# **Models trained on the synthetic set are not expected to work on real photographs.** The
# smoke and cpu profiles train small models for minutes on flat-coloured synthetic people at
# 64×48; a photograph is another domain, and the skeleton drawn on the astronaut shows that
# gap, not what DistilPose does when trained on COCO (use a converted checkpoint of the
# authors, `distilkit convert`, for that).
#
# Per image: the boxes (labelled with the instance score), the skeletons (joints whose keypoint
# score is below 0.2 hollow, their limbs dashed), and a table of per-joint confidences. A
# student trained without L_CS is scored with unit keypoint scores, as evaluation scores it.
# Figures go to `out_dir` (a scratch folder under `runs/`, never `results/`).

# %% tags=["parameters"]
checkpoint = None         # None: the main job's fully distilled student, else one trained here
profile = "smoke"         # the profile of a student trained here (smoke: seconds)
main_job_profile = "cpu"  # where the main job's runs are looked for (None: not looked for)
cache_dir = None          # where a student trained here is kept (None: runs/<profile>/viz)
data_root = None          # synthetic val images (None: where the checkpoint was trained)
num_images = 3            # validation scenes to show
photograph = True         # also the astronaut photograph from scikit-image
flip_test = True
out_dir = "runs/notebooks/predict"   # relative: from the repository root
threads = None

# %%
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import torch

from distilkit.data.boxes import whole_image_box
from distilkit.data.topdown import DEFAULT_DET_FILE
from distilkit.evaluation.coco import write_coco_results
from distilkit.paths import resolve
from distilkit.predict import keypoint_score_rule, load_checkpoint_model, predict_files, predict_image
from distilkit.viz import save_png_pdf
from distilkit.viz.poses import plot_joint_confidences, plot_poses, student_checkpoint
from distilkit.viz.samples import data_root_of

if threads:
    torch.set_num_threads(int(threads))
ckpt_path = student_checkpoint(checkpoint, profile=profile, main_job_profile=main_job_profile,
                               cache_dir=cache_dir)
model, ckpt = load_checkpoint_model(ckpt_path)
rule = keypoint_score_rule(model, ckpt)
root = data_root_of(ckpt_path, None if data_root is None else resolve(data_root))
out = resolve(out_dir)
out.mkdir(parents=True, exist_ok=True)
print(f"checkpoint {ckpt_path}\n  {ckpt['model_name']} ({model.kind}), profile "
      f"{ckpt['config']['profile']}, keypoint scores: {rule}\n  data {root}\n  figures -> {out}")
print("NOTE: models trained on the synthetic set are not expected to work on real photographs; "
      "the photograph below shows that domain gap, not DistilPose trained on COCO.")

# %% [markdown]
# ## Synthetic validation scenes, in the simulated detector's boxes

# %%
images = sorted((root / "val2017").glob("*.jpg"))[:num_images]
det_file = root / DEFAULT_DET_FILE
shown = list(predict_files(model, images, boxes_file=det_file if det_file.is_file() else None,
                           flip_test=flip_test, kpt_scores=rule))
for pred in shown:
    stem = pred.ref.path.stem
    fig = plot_poses(pred.image, pred.results,
                     title=f"{pred.ref.path.name}: {len(pred.results)} box(es)")
    save_png_pdf(fig, out, f"predict_{stem}")
    plt.show()
    fig = plot_joint_confidences(pred.results, title=f"{pred.ref.path.name}: per-joint confidence")
    save_png_pdf(fig, out, f"confidence_{stem}")
    plt.show()

# %% [markdown]
# ## A real photograph
#
# One whole-image box around the astronaut. Expect nonsense from a model trained on the
# synthetic set: it has never seen a photograph.

# %%
results = [r for pred in shown for r in pred.results]
if photograph:
    photo = skimage.data.astronaut()                      # (512, 512, 3) uint8 RGB
    h, w = photo.shape[:2]
    photo_results = predict_image(model, photo, [whole_image_box(w, h)], flip_test=flip_test,
                                  kpt_scores=rule, image_id=0)
    print("NOTE: models trained on the synthetic set are not expected to work on real "
          f"photographs: mean keypoint score here {np.mean(photo_results[0]['keypoints'][2::3]):.2f}, "
          f"instance score {photo_results[0]['score']:.2f}.")
    fig = plot_poses(photo, photo_results, title="skimage.data.astronaut(): whole-image box")
    save_png_pdf(fig, out, "predict_astronaut")
    plt.show()
    fig = plot_joint_confidences(photo_results, title="astronaut: per-joint confidence")
    save_png_pdf(fig, out, "confidence_astronaut")
    plt.show()
    results += [{**r, "file_name": "skimage.data.astronaut()"} for r in photo_results]

# %%
print(f"wrote {write_coco_results(results, out / 'keypoints.json')}: {len(results)} result(s)")
