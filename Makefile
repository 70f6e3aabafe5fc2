# Two entry points: `make test` and `make reproduce`. Both create .venv on first use.
PYTHON ?= python3
# A wheel index for torch and torchvision alone, e.g. a CPU-only one; empty: the default index
TORCH_INDEX_URL ?=
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv test reproduce notebooks lab clean-runs

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch and torchvision first, pinned as a pair (from TORCH_INDEX_URL when it is set)
	$(BIN)/python -m pip install -q -c constraints.txt $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) \
		torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,notebooks]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m ruff check distilkit notebooks tests bench
	$(BIN)/python -m pytest -q -x --durations=15

# flags for distilkit reproduce (or jupyter lab), e.g. make reproduce ARGS="--tables 4 --rows none all"
ARGS ?=

# an interrupted main job's last line names the command that resumes it: this one
reproduce: export DISTILKIT_RESUME_COMMAND = make reproduce$(if $(ARGS), ARGS="$(ARGS)")
reproduce: $(STAMP)
	$(BIN)/distilkit reproduce --profile cpu $(ARGS)

# JupyterLab at the repository root (notebooks/, runs/, results/ in its file browser), with the
# kit's settings (jupyter/overrides.json: a double-clicked .py notebook opens as a notebook).
# ARGS go to jupyter lab, e.g. make lab ARGS="--no-browser --port=8899 --ServerApp.token=secret".
# As root (containers, CI) it adds --allow-root, which jupyter otherwise demands. LAB_ROOT: the
# folder it serves.
LAB_ROOT ?= $(CURDIR)
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(LAB_ROOT)" --LabApp.app_settings_dir="$(CURDIR)/jupyter" \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

clean-runs:
	rm -rf runs/
