"""MTCNN's three stages (Zhang et al., 2016) as facenet-pytorch 2.6.0 runs them, with its
networks, its helpers and the same arithmetic, except for how images are resized: every
pyramid level and every candidate box of a stage is resampled in one vectorised step.

Why: facenet-pytorch's `detect_face` resizes each pyramid level with `interpolate(mode=
"area")`, whose CPU kernel reads the whole input for every level however small, and then
resamples each candidate box through its own call (for 20 frames of 720p, ~1,750 boxes for
the second stage and ~130 for the third). Together that was ~40 % of face detection here.
Area resizing is adaptive average pooling of integer pixels, so each output pixel's sum is
read off an integral image in exact integer arithmetic and divided the way PyTorch divides
(`sum / kh / kw` in float32). The inputs of every network are value-for-value facenet-pytorch's;
R-Net's and O-Net's are laid out channels-last (`_crop_boxes` says why), so boxes and landmarks
agree with facenet-pytorch's to 1e-4 px and probabilities to 1e-6 (over 288 FF++ frames; the
faces found are the same: `tests/ml/test_mtcnn.py` checks this on real frames).

A caller that knows where faces were (the frame before, in a video) can ask the first stage to
look only there (`Region`): the proposal network then runs on windows of the pyramid's levels
instead of whole levels, and proposes within them exactly what it proposes on the whole level.

`detect_face` is ported from `facenet_pytorch.models.utils.detect_face` (MIT licence); apart
from resizing, an image smaller than the smallest face has no faces and a box that lies wholly
outside its image is dropped (facenet-pytorch raises errors there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch.models.utils.detect_face import (
    batched_nms,
    batched_nms_numpy,
    bbreg,
    fixed_batch_process,
    generateBoundingBox,
    pad,
    rerec,
)


@dataclass(frozen=True)
class Region:
    """Where to look in one image of a batch: a rectangle of its pixels, and the smallest face
    worth looking for there (pixels)."""

    image: int
    x0: float
    y0: float
    x1: float
    y1: float
    smallest_face: float


def detect_face(
    images: np.ndarray,
    minsize: float,
    pnet: torch.nn.Module,
    rnet: torch.nn.Module,
    onet: torch.nn.Module,
    threshold: Sequence[float],
    factor: float,
    regions: Sequence[Region] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Faces in a batch of equal-sized RGB uint8 images `(N, H, W, 3)`.

    Returns, per image, an array `(K, 5)` of boxes `x1, y1, x2, y2, probability` and an
    array `(K, 5, 2)` of landmarks, in facenet-pytorch's order (K may be 0).

    With `regions`, the first stage looks only inside them (an image without a region has no
    faces), on the pyramid levels that find faces of their `smallest_face` or larger. The
    pyramid is the one `minsize` sets, and within a region the first network's outputs are
    those it gives on the whole level, so a face inside a region is found as a search of the
    whole image finds it (`_propose_in_regions` says how). The first stage is most of the
    work, and a region around a known face is a small part of the pyramid.
    """
    device = next(pnet.parameters()).device
    model_dtype = next(pnet.parameters()).dtype
    batch_size, h, w = images.shape[:3]
    integral = _integral_images(images)
    every_image = torch.arange(batch_size)

    # First stage: the proposal network over an image pyramid.
    m = 12.0 / minsize
    minl = min(h, w) * m
    scales = []
    scale_i = m
    while minl >= 12:
        scales.append(scale_i)
        scale_i = scale_i * factor
        minl = minl * factor
    if not scales:  # smaller than the smallest face (facenet-pytorch raises here)
        return [np.zeros((0, 5), np.float32)] * batch_size, [np.zeros((0, 5, 2), np.float32)] * batch_size

    boxes_list, inds_list, scale_picks = [], [], []
    offset = 0
    whole = [torch.full((batch_size,), v) for v in (0, h, 0, w)]  # each pyramid level is a whole image
    for scale in scales:
        level = (int(h * scale + 1), int(w * scale + 1))
        if regions is None:
            im_data = _resample(integral, every_image, *whole, level)
            im_data = (im_data.to(device, model_dtype) - 127.5) * 0.0078125
            reg, probs = pnet(im_data)
            boxes_scale, image_inds_scale = generateBoundingBox(reg, probs[:, 1], scale, threshold[0])
        else:
            boxes_scale, image_inds_scale = _propose_in_regions(
                integral, regions, (h, w), level, scale, pnet, threshold[0]
            )
        boxes_list.append(boxes_scale)
        inds_list.append(image_inds_scale)
        pick = batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], image_inds_scale, 0.5)
        scale_picks.append(pick + offset)
        offset += boxes_scale.shape[0]

    boxes = torch.cat(boxes_list, dim=0)
    image_inds = torch.cat(inds_list, dim=0)
    picks = torch.cat(scale_picks, dim=0)
    boxes, image_inds = boxes[picks], image_inds[picks]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]

    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    qq1 = boxes[:, 0] + boxes[:, 5] * regw
    qq2 = boxes[:, 1] + boxes[:, 6] * regh
    qq3 = boxes[:, 2] + boxes[:, 7] * regw
    qq4 = boxes[:, 3] + boxes[:, 8] * regh
    boxes = torch.stack([qq1, qq2, qq3, qq4, boxes[:, 4]]).permute(1, 0)
    boxes = rerec(boxes)

    # Second stage: the refinement network on 24x24 crops.
    if len(boxes) > 0:
        boxes, image_inds, im_data = _crop_boxes(integral, boxes, image_inds, w, h, 24)
        im_data = (im_data.to(device, model_dtype) - 127.5) * 0.0078125
        out = fixed_batch_process(im_data, rnet)
        out0 = out[0].permute(1, 0)
        out1 = out[1].permute(1, 0)
        score = out1[1, :]
        ipass = score > threshold[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
        boxes, image_inds, mv = boxes[pick], image_inds[pick], mv[pick]
        boxes = bbreg(boxes, mv)
        boxes = rerec(boxes)

    # Third stage: the output network on 48x48 crops, with landmarks.
    points = torch.zeros(0, 5, 2, device=device)
    if len(boxes) > 0:
        boxes, image_inds, im_data = _crop_boxes(integral, boxes, image_inds, w, h, 48)
        im_data = (im_data.to(device, model_dtype) - 127.5) * 0.0078125
        out = fixed_batch_process(im_data, onet)
        out0 = out[0].permute(1, 0)
        out1 = out[1].permute(1, 0)
        out2 = out[2].permute(1, 0)
        score = out2[1, :]
        points = out1
        ipass = score > threshold[2]
        points = points[:, ipass]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        image_inds = image_inds[ipass]
        mv = out0[:, ipass].permute(1, 0)
        w_i = boxes[:, 2] - boxes[:, 0] + 1
        h_i = boxes[:, 3] - boxes[:, 1] + 1
        points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
        points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
        points = torch.stack((points_x, points_y)).permute(2, 1, 0)
        boxes = bbreg(boxes, mv)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
        boxes, image_inds, points = boxes[pick], image_inds[pick], points[pick]

    boxes_np = boxes.cpu().numpy()
    points_np = points.cpu().numpy()
    inds_np = image_inds.cpu().numpy()
    return (
        [boxes_np[inds_np == b].copy() for b in range(batch_size)],
        [points_np[inds_np == b].copy() for b in range(batch_size)],
    )


def _propose_in_regions(
    integral: torch.Tensor,
    regions: Sequence[Region],
    size: tuple[int, int],
    level: tuple[int, int],
    scale: float,
    pnet: torch.nn.Module,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`generateBoundingBox`'s candidates of one pyramid level, from windows of the level that
    cover the regions instead of the whole level.

    The proposal network is fully convolutional with a stride of 2: its output (y, x) reads
    level pixels [2y, 2y + 12) x [2x, 2x + 12) and nothing else. A window that starts at even
    coordinates and is of even size (or ends where the level ends, which then has the same
    last, partial pooling cell) therefore gives, at its output (y, x), the whole level's output
    (y + top / 2, x + left / 2); the window's pixels are the level's, resampled by the same
    arithmetic (`_bins`, `_area`). Windows overlapping in one image give some candidates twice; the
    per-level suppression that follows keeps one of each.
    """
    device = next(pnet.parameters()).device
    model_dtype = next(pnet.parameters()).dtype
    height, width = size
    level_h, level_w = level
    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for region in regions:
        if 12.0 / scale < region.smallest_face:  # this level finds only smaller faces
            continue
        top, rows = _window(region.y0, region.y1, scale, level_h)
        left, cols = _window(region.x0, region.x1, scale, level_w)
        if rows >= 12 and cols >= 12:
            groups.setdefault((rows, cols), []).append((region.image, top, left))
    boxes_list = [torch.zeros(0, 9, device=device)]
    inds_list = [torch.zeros(0, dtype=torch.long, device=device)]
    for (rows, cols), windows in groups.items():
        image_inds, tops, lefts = (torch.tensor(column) for column in zip(*windows, strict=True))
        r0, r1 = _bins(0, height, level_h, tops[:, None] + torch.arange(rows))
        c0, c1 = _bins(0, width, level_w, lefts[:, None] + torch.arange(cols))
        im_data = _area(integral, image_inds, r0, r1, c0, c1)
        im_data = (im_data.to(device, model_dtype) - 127.5) * 0.0078125
        reg, probs = pnet(im_data)
        # generateBoundingBox, with each window's output positions moved to the level's.
        reg = reg.permute(1, 0, 2, 3)
        mask = probs[:, 1] >= threshold
        mask_inds = mask.nonzero()
        window = mask_inds[:, 0]
        offsets = torch.stack([lefts, tops], dim=1).to(device)[window] // 2
        bb = (mask_inds[:, 1:].flip(1) + offsets).type(reg.dtype)
        q1 = ((2 * bb + 1) / scale).floor()
        q2 = ((2 * bb + 12) / scale).floor()
        reg = reg[:, mask].permute(1, 0)
        boxes_list.append(torch.cat([q1, q2, probs[:, 1][mask].unsqueeze(1), reg], dim=1))
        inds_list.append(image_inds.to(device)[window])
    return torch.cat(boxes_list), torch.cat(inds_list)


def _window(start: float, end: float, scale: float, length: int) -> tuple[int, int]:
    """The first index and the size of a window of a pyramid level of `length` pixels that
    covers image pixels [start, end): even start, even size or reaching the level's end."""
    first = max(0, int(np.floor(start * scale)))
    first -= first % 2
    size = int(np.ceil(end * scale)) - first
    size += size % 2
    if first + size >= length:
        size = length - first
    return first, max(0, size)


def _integral_images(images: np.ndarray) -> torch.Tensor:
    """`(N, H+1, W+1, 3)` sums of all pixels above and left of each position, exact: int32
    where no sum can reach 2**31 (any frame up to 8.4 megapixels), else float64."""
    count, height, width, channels = images.shape
    exact_in_int32 = 255 * height * width < 2**31
    sums = np.empty((count, height + 1, width + 1, channels), np.int32 if exact_in_int32 else np.float64)
    for image, out in zip(images, sums, strict=True):
        # Written in place: stacking separate results copied 45 MB for 16 frames of 640x360 (30 ms).
        cv2.integral(image, sum=out, sdepth=cv2.CV_32S if exact_in_int32 else cv2.CV_64F)
    return torch.from_numpy(sums)


def _crop_boxes(
    integral: torch.Tensor, boxes: torch.Tensor, image_inds: torch.Tensor, w: int, h: int, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each box's pixels (facenet-pytorch's `pad` clipping), area-resampled to `size` x `size`.

    Returns the boxes and image indices that have pixels in their image, and their crops as
    float32 `(K, 3, size, size)` in channels-last memory. facenet-pytorch's crops are plain
    contiguous; in channels-last, R-Net and O-Net run 2.5-3x faster here (PyTorch's max
    pooling is a scalar loop on contiguous tensors, vectorised over channels on
    channels-last ones), and their outputs differ by about 1e-6, the rounding of a
    different summation order.
    """
    y, ey, x, ex = (torch.from_numpy(v).long() for v in pad(boxes, w, h))
    y0, x0 = y - 1, x - 1  # pad() is 1-based; the crop is rows y-1..ey-1, columns x-1..ex-1
    inside = torch.as_tensor((ey > y0) & (ex > x0), device=boxes.device)
    if not bool(inside.all()):
        boxes, image_inds = boxes[inside], image_inds[inside]
        keep = inside.cpu()
        y0, ey, x0, ex = y0[keep], ey[keep], x0[keep], ex[keep]

    crops = _resample(integral, image_inds.cpu().long(), y0, ey, x0, ex, (size, size))
    return boxes, image_inds, crops


def _resample(
    integral: torch.Tensor,
    image_inds: torch.Tensor,
    y0: torch.Tensor,
    y1: torch.Tensor,
    x0: torch.Tensor,
    x1: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Rows `y0..y1-1` and columns `x0..x1-1` of image `image_inds[k]`, for each k, resized to
    `size` as `interpolate(mode="area")` resizes (adaptive average pooling), value for value.

    Output pixel i of n covers input pixels `[floor(i*len/n), ceil((i+1)*len/n))` along each
    axis; its sum is four lookups in the integral image. Returns float32 `(K, 3, *size)` in
    channels-last memory, the layout `interpolate` gives a channels-last image batch.
    """
    out_h, out_w = size
    r0, r1 = _bins(y0[:, None], (y1 - y0)[:, None], out_h, torch.arange(out_h))
    c0, c1 = _bins(x0[:, None], (x1 - x0)[:, None], out_w, torch.arange(out_w))
    return _area(integral, image_inds, r0, r1, c0, c1)


def _bins(
    start: torch.Tensor | int, length: torch.Tensor | int, n: int, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The input pixels `[first, end)` that output pixels `index` of `n` average, resizing
    `length` pixels from `start` along one axis: `[floor(i*length/n), ceil((i+1)*length/n))`."""
    return start + (index * length) // n, start + ((index + 1) * length + n - 1) // n


def _area(
    integral: torch.Tensor,
    image_inds: torch.Tensor,
    r0: torch.Tensor,
    r1: torch.Tensor,
    c0: torch.Tensor,
    c1: torch.Tensor,
) -> torch.Tensor:
    """The mean of each bin of image `image_inds[k]`: output pixel (i, j) of crop k averages
    rows `r0[k, i]..r1[k, i]-1` and columns `c0[k, j]..c1[k, j]-1`. float32 `(K, 3, I, J)`,
    channels-last."""
    out_h, out_w = r0.shape[1], c0.shape[1]
    _, height_1, row_stride, channels = integral.shape
    flat = integral.reshape(-1, channels)
    base = image_inds[:, None, None] * (height_1 * row_stride)

    def corner(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = base + rows[:, :, None] * row_stride + cols[:, None, :]
        return flat.index_select(0, index.reshape(-1)).reshape(len(index), out_h, out_w, channels)

    sums = corner(r1, c1) - corner(r0, c1) - corner(r1, c0) + corner(r0, c0)
    # PyTorch's kernel divides by the bin's height, then by its width, in float32.
    kh = (r1 - r0).to(torch.float32)[:, :, None, None]
    kw = (c1 - c0).to(torch.float32)[:, None, :, None]
    return (sums.to(torch.float32) / kh / kw).permute(0, 3, 1, 2)
