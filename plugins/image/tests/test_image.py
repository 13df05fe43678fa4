"""The image plugin: readers on fixtures in each format's layout, trunks and weights, the demo,
and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from negev.plugins import get_plugin
from negev_cli.app import app
from negev_image.digits import DigitCanvasConfig, digits_demo
from negev_image.drawing import HIGH_OUTLINE, LOW_OUTLINE, evidence_overlay
from negev_image.images import read_image, to_model_input
from negev_image.readers import read_coco, read_csv, read_voc, truth_mask
from negev_image.trunks import SmallCNN, load_trunk_weights, resnet_trunk


def write_image(path, size=(40, 30), colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def write_corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    good = path.with_suffix(".tmp.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    path.write_bytes(good.read_bytes()[:300])  # a truncated JPEG
    good.unlink()


VOC_XML = """<annotation><filename>{id}.jpg</filename><size><width>40</width><height>30</height>
<depth>3</depth></size>{objects}</annotation>"""
VOC_OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>
<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"""


def make_voc(root):
    objects = {
        "000001": [("dog", 0, (1, 1, 10, 10)), ("person", 0, (20, 5, 35, 25))],
        "000002": [("cat", 0, (5, 5, 15, 15)), ("dog", 1, (2, 2, 8, 8))],
        "000003": [("car", 0, (1, 1, 40, 30))],
        "000004": [("bus", 0, (1, 1, 5, 5))],
        "000005": [("bird", 0, (1, 1, 5, 5))],
        "000006": [(" ", 0, (1, 1, 5, 5))],
        "000007": [("cat", 0, (1, 1, 5, 5))],
    }
    for image_id, objs in objects.items():
        body = "".join(
            VOC_OBJECT.format(name=n, difficult=d, x0=b[0], y0=b[1], x1=b[2], y1=b[3])
            for n, d, b in objs
        )
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            VOC_XML.format(id=image_id, objects=body)
        )
        write_image(root / "JPEGImages" / f"{image_id}.jpg")
    broken = (root / "Annotations" / "000004.xml").read_text().replace("</name>", "", 1)
    (root / "Annotations" / "000004.xml").write_text(broken)
    write_corrupt(root / "JPEGImages" / "000005.jpg")
    seg = np.zeros((30, 40), np.uint8)
    seg[0:10, 0:10] = 12  # dog is VOC class index 11 -> 12
    seg[0, :] = 255
    (root / "SegmentationClass").mkdir()
    palette = Image.fromarray(seg).convert("P")
    palette.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    palette.save(root / "SegmentationClass" / "000001.png")  # VOC's layout: a palette PNG
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("000001\n000002\n000004\n000005\n000006\n")
    (main / "val.txt").write_text("000003\n")
    (main / "test.txt").write_text("000007\n")


def test_voc_reader(tmp_path):
    make_voc(tmp_path)
    data = read_voc(tmp_path)
    assert data.classes[11] == "dog" and len(data.classes) == 20
    train = {e.name.rsplit("/", 1)[-1]: e for e in data.train}
    assert set(train) == {"000001.jpg", "000002.jpg"}
    first = train["000001.jpg"]
    assert first.labels == (data.classes.index("dog"), data.classes.index("person"))
    assert first.truth["boxes"][0] == (11, 0, 0, 9, 9)  # 1-based inclusive -> 0-based
    assert first.truth["size"] == (30, 40)
    mask = truth_mask(first.truth)
    assert mask.shape == (30, 40) and mask[5, 5] == 12 and mask[0, 20] == 255
    # a class seen only as "difficult" is a missing label, not a negative
    second = train["000002.jpg"]
    assert second.labels == (data.classes.index("cat"),)
    assert second.unknown == (data.classes.index("dog"),)
    assert [b.name for b in data.bad] == [
        "Annotations/000004.xml",
        "JPEGImages/000005.jpg",
        "Annotations/000006.xml",
    ]
    assert "broken XML: mismatched tag: line" in data.bad[0].reason
    assert "cannot read image" in data.bad[1].reason
    assert data.bad[2].reason == "an <object> has no <name>"
    assert len(data.val) == 1 and len(data.test) == 1


def test_voc_reader_reports_ids_listed_twice(tmp_path):
    make_voc(tmp_path)
    main = tmp_path / "ImageSets" / "Main"
    (main / "train.txt").write_text("000001\n000002\n000001\n")
    (main / "test.txt").write_text("000007\n000002\n")
    data = read_voc(tmp_path)
    reasons = {b.name: b.reason for b in data.bad}
    assert reasons["ImageSets/Main/train.txt:3"] == "image 000001 is listed again (first at line 1)"
    assert reasons["ImageSets/Main/test.txt:2"] == (
        "image 000002 is in train as well (splits must not share)"
    )
    assert len(data.bad) == 2
    assert [len(data.train), len(data.val), len(data.test)] == [2, 1, 1]
    # without test.txt the test split is val, as before: no overlap reported
    (main / "test.txt").unlink()
    assert [b.name for b in read_voc(tmp_path).bad] == ["ImageSets/Main/train.txt:3"]


def test_voc_reader_needs_the_layout(tmp_path):
    with pytest.raises(ValueError, match="not a VOC directory: Annotations/ is missing"):
        read_voc(tmp_path)


def test_coco_reader(tmp_path):
    images = tmp_path / "val2017"
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        write_image(images / name)
    write_corrupt(images / "c.jpg")
    coco = {
        "images": [
            {"id": i, "file_name": n, "width": 40, "height": 30}
            for i, n in enumerate(["a.jpg", "b.jpg", "c.jpg", "missing.jpg", "d.jpg", "e.jpg"])
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 0, "category_id": 18, "bbox": [2, 3, 10, 5], "iscrowd": 0,
             "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]]},
            {"id": 2, "image_id": 0, "category_id": 1, "bbox": [0, 0, 40, 30], "iscrowd": 1,
             "segmentation": {"counts": [0], "size": [30, 40]}},
            {"id": 3, "image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1], "iscrowd": 0},
            {"id": 4, "image_id": 4, "category_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 0},
            {"id": 5, "image_id": 5, "category_id": 1, "iscrowd": 0},
        ],
    }  # fmt: skip
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps(coco))
    data = read_coco(path)
    assert data.classes == ["person", "dog"]
    examples = {e.name.rsplit("/", 1)[-1]: e for e in data.train + data.val + data.test}
    assert set(examples) == {"a.jpg", "d.jpg"}
    a = examples["a.jpg"]
    assert a.labels == (0, 1) and a.truth["boxes"] == [(1, 2, 3, 11, 7)]  # crowd: label only
    mask = truth_mask(a.truth)
    assert mask[5, 5] == 2 and mask[20, 30] == 0
    reasons = {b.name: b.reason for b in data.bad}
    assert reasons["b.jpg"] == "annotation 3 has unknown category_id 99"
    assert reasons["e.jpg"] == "annotation 5 has no bbox [x, y, width, height]"
    assert (
        "cannot read image" in reasons["c.jpg"] and "no such image file" in reasons["missing.jpg"]
    )
    (tmp_path / "bad.json").write_text('{"images": [}')
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        read_coco(tmp_path / "bad.json")


def test_csv_reader(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "img" / name)
    write_corrupt(tmp_path / "img" / "broken.jpg")
    (tmp_path / "data.csv").write_text(
        "path,labels,split\nimg/a.png,cat|dog,train\nimg/b.png,,train\nimg/c.png,dog,test\n"
        "img/broken.jpg,cat,val\nimg/a.png,horse,val\nimg/none.png,cat,val\nimg/b.png,cat,dev\n"
    )
    data = read_csv(tmp_path / "data.csv", classes=["cat", "dog"])
    assert [e.labels for e in data.train] == [(0, 1), ()] and [e.labels for e in data.test] == [
        (1,)
    ]
    reasons = [(b.name, b.reason) for b in data.bad]
    assert reasons[0] == ("data.csv:6 (img/a.png)", "unknown label 'horse' (classes: cat, dog)")
    assert reasons[1] == ("data.csv:8 (img/b.png)", "split must be train, val or test, got 'dev'")
    assert reasons[2][0] == "data.csv:5 (img/broken.jpg)"
    assert reasons[2][1].startswith("cannot read image")
    assert reasons[3] == ("data.csv:7 (img/none.png)", "no such image file")
    inferred = read_csv(tmp_path / "data.csv")
    assert inferred.classes == ["cat", "dog", "horse"]


def test_a_folder_of_images_is_read_unlabelled_for_prediction(tmp_path):
    from negev.inference import Predictor
    from negev.testing.runs import untrained_run

    folder = tmp_path / "photos"
    for name in ("b.png", "a.JPG", "sub/c.png", ".hidden/d.png"):
        write_image(folder / name)
    write_corrupt(folder / "sub" / "broken.jpg")
    (folder / "notes.txt").write_text("not an item")
    run = tmp_path / "run"
    untrained_run(run, "image", {"plugin": {"demo_train": 4, "demo_val": 2, "demo_test": 2}})
    predictor = Predictor(run)
    examples, bad = predictor.read_data(str(folder), skip_bad=True)
    assert [e.name for e in examples] == [str(folder / n) for n in ("a.JPG", "b.png", "sub/c.png")]
    assert [b.name for b in bad] == [str(folder / "sub" / "broken.jpg")]
    assert bad[0].reason.startswith("cannot read image")
    scores = [p.scores for p in predictor.predictions(examples)]
    reference = predictor.predict([e.name for e in examples]).scores  # the files given one by one
    assert torch.allclose(torch.stack(scores), reference)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no image file"):
        predictor.read_data(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="is not a VOC directory"):  # training needs labels
        get_plugin("image").load_data(str(folder), {})
    (folder / "Annotations").mkdir()  # a labelling tool's export beside the photos: not VOC
    (folder / "gone.png").symlink_to(folder / "missing.png")  # a link to nothing: a bad item
    examples, bad = predictor.read_data(str(folder), skip_bad=True)
    assert len(examples) == 3 and [b.name for b in bad][0] == str(folder / "gone.png")


def test_read_image_errors_name_the_file(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes.png: cannot read image"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(ValueError, match=r"nothing.png: no such image file"):
        read_image(tmp_path / "nothing.png")
    write_image(tmp_path / "ok.png", size=(50, 20))
    image = read_image(tmp_path / "ok.png")
    assert image.shape == (3, 20, 50) and image.dtype == torch.uint8
    x = to_model_input(image, 32)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    # normalised with ImageNet statistics: the red channel of (200, 30, 30)
    assert float(x[0, 5, 5]) == pytest.approx((200 / 255 - 0.485) / 0.229, abs=1e-4)


def test_trunk_shapes():
    assert SmallCNN(8)(torch.randn(2, 3, 64, 64)).shape == (2, 32, 16, 16)
    trunk, channels = resnet_trunk(18)
    assert channels == 512 and trunk(torch.randn(1, 3, 64, 96)).shape == (1, 512, 2, 3)
    with pytest.raises(ValueError, match="ResNet depth must be one of"):
        resnet_trunk(20)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_resnet_weights_load_from_a_local_file(tmp_path, suffix):
    source = torchvision.models.resnet18(weights=None)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state}, path)
    trunk, _ = resnet_trunk(18)
    load_trunk_weights(trunk, path)
    torch.testing.assert_close(trunk[0].weight, source.conv1.weight)
    torch.testing.assert_close(trunk[7][1].bn2.running_var, source.layer4[1].bn2.running_var)


def test_wrong_weights_are_refused_with_the_reason(tmp_path):
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    trunk, _ = resnet_trunk(18)
    with pytest.raises(ValueError, match=r"does not fit this trunk: \d+ unknown keys \(layer1.2"):
        load_trunk_weights(trunk, tmp_path / "r34.pth")
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(state, tmp_path / "gray.pth")
    with pytest.raises(
        ValueError, match=r"1 shape mismatches \(conv1.weight: file \(64, 1, 7, 7\)"
    ):
        load_trunk_weights(trunk, tmp_path / "gray.pth")
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(ValueError, match="junk.pth cannot be read"):
        load_trunk_weights(trunk, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="does not exist"):
        load_trunk_weights(trunk, tmp_path / "none.pth")


def test_demo_is_deterministic_and_its_truth_agrees_with_its_labels():
    config = DigitCanvasConfig(size=48, scale=(10, 14))
    first = digits_demo((30, 5, 20), config, seed=3)
    again = digits_demo((30, 5, 20), config, seed=3)
    assert all(
        torch.equal(a.inputs, b.inputs) for a, b in zip(first.train, again.train, strict=True)
    )
    assert first.classes == [str(d) for d in range(10)] and first.multilabel and first.builtin
    for example in first.train + first.test:
        truth = example.truth
        assert example.inputs.shape == (3, 48, 48) and example.inputs.dtype == torch.uint8
        assert 1 <= len(example.labels) <= 3
        assert sorted({b[0] for b in truth["boxes"]}) == list(example.labels)
        for _, x0, y0, x1, y1 in truth["boxes"]:
            assert 0 <= x0 <= x1 < 48 and 0 <= y0 <= y1 < 48
        in_mask = set(np.unique(truth["mask"]).tolist()) - {0}
        assert in_mask <= {c + 1 for c in example.labels}


def test_cli_train_evaluate_explain_on_the_demo(tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "--modality", "image", "--out", str(run), "--epochs", "1", "--quiet",
        "--set", "demo_train=48", "--set", "demo_val=16", "--set", "demo_test=24",
        "--set", "width=8", "--set", "canvas=48",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(run)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation_test.json").read_text())
    for key in ("mAP", "mAP_voc07", "pointing_ap", "pointing_game", "corloc", "miou"):
        assert 0.0 <= metrics[key] <= 1.0
    picture = tmp_path / "digits.png"
    demo = {"plugin": {"canvas": 48, "demo_train": 1, "demo_val": 1, "demo_test": 1}}
    pixels = get_plugin("image").load_data(None, demo).test[0].inputs
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(picture)
    result = runner.invoke(
        app,
        [
            "explain",
            "--checkpoint",
            str(run),
            "--input",
            str(picture),
            "--out",
            str(tmp_path / "ex"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cell(row" in result.output
    pngs = sorted(p.name.partition("_")[2] for p in (tmp_path / "ex").glob("digits-*.png"))
    assert len(pngs) == 11 and "grid.png" in pngs and "7.png" in pngs
    with Image.open(next((tmp_path / "ex").glob("digits-*_grid.png"))) as grid:
        assert grid.size == (6 * 256, 2 * 274)
    result = runner.invoke(app, ["explain", "--checkpoint", str(run), "--input", "nope.png"])
    assert result.exit_code != 0 and "nope.png: no such image file" in result.output


def test_cli_trains_a_resnet_from_local_weights_on_a_voc_directory(tmp_path):
    make_voc(tmp_path / "voc")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    runner = CliRunner()
    args = [
        "train", "--modality", "image", "--data", str(tmp_path / "voc"), "--out",
        str(tmp_path / "run"), "--epochs", "1", "--batch-size", "2", "--quiet",
        "--weights", str(tmp_path / "r18.pth"), "--set", "trunk=resnet18", "--set", "image_size=64",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "3 bad item(s): Annotations/000004.xml: broken XML" in result.output
    result = runner.invoke(app, [*args, "--skip-bad"])
    assert result.exit_code == 0, result.output
    bad = json.loads((tmp_path / "run" / "bad_items.json").read_text())
    assert [b["item"] for b in bad] == [
        "Annotations/000004.xml",
        "JPEGImages/000005.jpg",
        "Annotations/000006.xml",
    ]
    small = [*args[1:5], "--out", str(tmp_path / "r2"), "--weights", str(tmp_path / "r18.pth")]
    result = runner.invoke(app, ["train", *small, "--skip-bad"])
    assert result.exit_code != 0 and "use a resnet trunk" in result.output


def test_overlay_shades_by_sign_and_outlines_the_kept_cells():
    image = torch.full((3, 32, 32), 128, dtype=torch.uint8)
    class_map = torch.zeros(4, 4)
    class_map[0, 0], class_map[3, 3] = 2.0, -2.0
    high = torch.zeros(4, 4, dtype=torch.bool)
    low = torch.zeros(4, 4, dtype=torch.bool)
    high[0, 0], low[3, 3] = True, True
    tile = np.asarray(evidence_overlay(image, class_map, "7 +1.00", (high, low), side=64))
    body = tile[18:]  # under the title band
    assert tile.shape == (64 + 18, 64, 3)
    assert tuple(body[0, 0]) == HIGH_OUTLINE and tuple(body[63, 63]) == LOW_OUTLINE
    inside_high, inside_low = body[6, 6].astype(int), body[57, 57].astype(int)
    assert inside_high[1] > inside_high[0] and inside_low[0] > inside_low[1]  # green / red
    assert tuple(body[32, 32]) == (128, 128, 128)  # no evidence: the image itself
