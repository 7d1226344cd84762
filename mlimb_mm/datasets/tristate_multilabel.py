import csv
import os.path as osp
from array import array
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.fileio import (LocalBackend, exists, get_file_backend,
                             get_local_path)

from mmpretrain.registry import DATASETS
from .base_multi_label import BaseMultiLabelDataset
from .label_utils import NEGATIVE, POSITIVE, UNKNOWN, load_annotation_file


def join_paths(prefix: str, paths: List[str]) -> List[str]:
    """``join_path(prefix, path)`` for many paths (one backend look-up; a
    plain string concatenation for local relative paths)."""
    backend = get_file_backend(prefix, enable_singleton=True)
    if not isinstance(backend, LocalBackend):
        return [backend.join_path(prefix, path) for path in paths]
    base = osp.join(prefix, '') if prefix else ''
    return [path if osp.isabs(path) else base + path for path in paths]


def positive_lists(labels: np.ndarray) -> List[List[int]]:
    """The positive class indices of each row of a tri-state matrix."""
    rows, cols = np.nonzero(labels == POSITIVE)
    ends = np.cumsum(np.bincount(rows, minlength=len(labels))).tolist()
    cols = cols.tolist()
    return [cols[start:end] for start, end in zip([0] + ends[:-1], ends)]


def classes_given(metainfo, classes, cls_metainfo=None) -> bool:
    """Whether class names are given before the annotation file is read:
    by the ``metainfo`` or ``classes`` argument, or by ``cls_metainfo`` (a
    class attribute ``METAINFO``) when that is passed."""
    return (classes is not None
            or (metainfo is not None and 'classes' in metainfo)
            or (cls_metainfo is not None and 'classes' in cls_metainfo))


def check_unique_classes(classes: Sequence[str], source: str) -> None:
    """Raise a ``ValueError`` naming a class that appears twice."""
    seen = set()
    for name in classes:
        if name in seen:
            raise ValueError(f'class {name!r} appears twice in the classes '
                             f'of {source}.')
        seen.add(name)


def select_classes(file_classes: Sequence[str], classes: Sequence[str],
                   source: str) -> np.ndarray:
    """Columns of the file's classes that give each of ``classes``.

    Args:
        file_classes (Sequence[str]): Class names of the annotation file, in
            the order its label indices refer to.
        classes (Sequence[str]): The dataset's class names; each must be one
            of ``file_classes`` (a subset, in any order).
        source (str): The annotation file, named in error messages.

    Returns:
        np.ndarray: ``(len(classes),)`` int64, the file column of each class.
    """
    check_unique_classes(file_classes, source)
    check_unique_classes(classes, 'the given `classes`')
    index = {name: i for i, name in enumerate(file_classes)}
    missing = [name for name in classes if name not in index]
    if missing:
        raise ValueError(
            f'classes {missing} are not classes of {source}; the given '
            '`classes` must be a subset of the file\'s classes '
            f'{list(file_classes)[:20]}'
            f'{" ..." if len(file_classes) > 20 else ""}.')
    return np.asarray([index[name] for name in classes], dtype=np.int64)


def read_class_descriptions(path: str) -> Tuple[List[str], List[str]]:
    """``(LabelNames, DisplayNames)`` of an Open Images class descriptions
    CSV: ``LabelName,DisplayName`` rows (``/m/011k07,Tortoise``), with or
    without that header, in file order. Errors name the file and row."""
    if not exists(path):
        raise FileNotFoundError(f'class descriptions file {path!r} not '
                                'found.')
    names, display = [], []
    with get_local_path(path) as local, open(
            local, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        for row in reader:
            if not row or not ''.join(row).strip():
                continue
            cells = [c.strip() for c in row]
            if reader.line_num == 1 and cells[:2] == ['LabelName',
                                                      'DisplayName']:
                continue
            if len(cells) < 2 or not cells[0]:
                raise ValueError(
                    f'row {reader.line_num} of {path}: expected '
                    f'`LabelName,DisplayName`, got {row}.')
            names.append(cells[0])
            display.append(','.join(cells[1:]))
    if not names:
        raise ValueError(f'{path} lists no class.')
    check_unique_classes(names, path)
    return names, display


@DATASETS.register_module()
class TriStateMultiLabelDataset(BaseMultiLabelDataset):
    """Multi-label dataset with tri-state labels read from an annotation file.

    The generic dataset for multi-label data whose labels may be unknown
    (NUS-WIDE, DeepFashion attributes, Open Images human-verified labels, ...).
    Every label is 1 (positive), 0 (negative) or -1 (unknown). Three
    annotation formats; ``ann_format='auto'`` picks one from the file name
    (all details in ``docs/datasets.md``):

    1. ``'table'`` (``.csv``, ``.tsv``, ``.txt``): one row per image, the
       header ``img_path`` followed by the class names; a cell is ``1``,
       ``0``, ``-1`` or empty (``default_label``)::

           img_path,cat,dog,bird
           a.jpg,1,0,-1

    2. ``'json'`` (``.json``, ``.yaml``, ``.pkl``; OpenMMLab 2.0 style):
       ``metainfo.classes`` and a ``data_list`` whose entries give a dense
       ``gt_tristate`` or sparse ``positive`` / ``negative`` class lists
       (indices or names), the other labels being ``default_label``::

           {"metainfo": {"classes": ["cat", "dog", "bird"]},
            "data_list": [{"img_path": "a.jpg", "gt_tristate": [1, 0, -1]},
                          {"img_path": "b.jpg", "positive": ["dog"]}]}

    3. ``'openimages'``: an Open Images style long CSV, one row per
       verified (image, class) pair with the columns ``ImageID``,
       ``LabelName`` and ``Confidence`` (1 positive, 0 negative; others
       ignored), e.g. ``oidv6-train-annotations-human-imagelabels.csv``;
       absent pairs are unknown. ``classes`` lists the ``LabelName`` values,
       or ``class_descriptions`` names the official class CSV.

    Class names given by ``metainfo``/``classes`` must be a subset of the
    file's classes: the dataset keeps those classes only, in the given
    order. Errors name the file and the row (header = row 1) or
    ``data_list`` entry at fault.

    Args:
        ann_file (str): Annotation file path, joined with ``data_root`` when
            relative.
        ann_format (str): ``'auto'``, ``'table'``, ``'json'`` or
            ``'openimages'``. Defaults to ``'auto'``.
        default_label (int): The label of a (image, class) pair the file does
            not give: ``-1`` unknown, or ``0`` for datasets where an absent
            label is a negative. Defaults to -1.
        skip_unknown_classes (bool): Open Images format only: skip the rows
            whose ``LabelName`` is not in the classes (e.g. to keep the 600
            boxable classes of the human-verified labels) instead of raising
            an error. Defaults to False.
        img_suffix (str): Open Images format only: file name suffix added to
            ``ImageID``. Defaults to ``'.jpg'``.
        class_descriptions (str, optional): The official Open Images
            ``LabelName,DisplayName`` CSV (relative to ``data_root``): the
            classes in file order and ``metainfo['display_names']``.
            Exclusive with ``classes`` / ``metainfo.classes``. Default None.
        metainfo (dict, optional): Meta information; ``classes`` (names,
            or a file with one name per line) selects the classes.
            Defaults to None.
        classes (str | Sequence[str], optional): Class names, or a file with
            one name per line; same as ``metainfo=dict(classes=...)``.
            Defaults to None.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``data_root``, ``data_prefix``, ``pipeline``, ...).

    Note:
        The classes are known after the file is read; with
        ``lazy_init=True`` :attr:`CLASSES` is ``None`` (or the given names)
        until :meth:`full_init`.
    """

    FORMATS = ('auto', 'table', 'json', 'openimages')
    _JSON_SUFFIXES = ('.json', '.yaml', '.yml', '.pkl', '.pickle')
    _TABLE_SUFFIXES = ('.csv', '.tsv', '.txt')
    _OI_COLUMNS = ('ImageID', 'LabelName', 'Confidence')

    def __init__(self,
                 ann_file: str,
                 ann_format: str = 'auto',
                 default_label: int = UNKNOWN,
                 skip_unknown_classes: bool = False,
                 img_suffix: str = '.jpg',
                 metainfo: Optional[dict] = None,
                 classes=None,
                 class_descriptions: Optional[str] = None,
                 **kwargs):
        if ann_format not in self.FORMATS:
            raise ValueError(f'ann_format={ann_format!r} is not one of '
                             f'{self.FORMATS}.')
        if default_label not in (UNKNOWN, NEGATIVE):
            raise ValueError(
                f'default_label must be -1 (unknown) or 0 (negative), got '
                f'{default_label!r}.')
        self.ann_format = ann_format
        self.default_label = int(default_label)
        self.skip_unknown_classes = skip_unknown_classes
        self.img_suffix = img_suffix
        self.class_descriptions = class_descriptions
        if class_descriptions is not None:
            if classes is not None or (metainfo and 'classes' in metainfo):
                raise ValueError('give either `class_descriptions` or '
                                 '`classes` / `metainfo.classes`, not both.')
            path = class_descriptions
            data_root = kwargs.get('data_root')
            if data_root and not osp.isabs(path) and not exists(path):
                path = osp.join(data_root, path)
            classes, display_names = read_class_descriptions(path)
            metainfo = dict(metainfo or {}, display_names=display_names)
        self._classes_given = classes_given(metainfo, classes, self.METAINFO)
        super().__init__(
            ann_file=ann_file, metainfo=metainfo, classes=classes, **kwargs)

    # ------------------------------------------------------------------ load
    def load_data_list(self) -> List[dict]:
        """Read the annotation file into data infos with ``gt_tristate``."""
        if not self.ann_file or not exists(self.ann_file):
            raise FileNotFoundError(
                f'annotation file {self.ann_file!r} not found.')
        fmt = self._detect_format()
        given = list(self.CLASSES) if self._classes_given else None
        self._loaded_clean = None
        if fmt == 'json':
            file_classes, img_paths, labels = self._load_json(given)
        elif fmt == 'openimages':
            file_classes, img_paths, labels = self._load_openimages(given)
        else:
            file_classes, img_paths, labels = self._load_table()

        classes = file_classes
        check_unique_classes(file_classes, self.ann_file)
        if given is not None and list(given) != list(file_classes):
            kept = select_classes(file_classes, given, self.ann_file)
            labels = labels[:, kept]
            if self._loaded_clean is not None:
                self._loaded_clean = self._loaded_clean[:, kept]
            classes = given
        self._metainfo['classes'] = tuple(classes)
        if not img_paths:
            raise ValueError(f'{self.ann_file} has no samples.')
        return self._make_data_list(img_paths, labels)

    def _detect_format(self) -> str:
        """The annotation format, ``ann_format`` or guessed from the file."""
        if self.ann_format != 'auto':
            return self.ann_format
        suffix = osp.splitext(self.ann_file)[1].lower()
        if suffix in self._JSON_SUFFIXES:
            return 'json'
        if suffix in self._TABLE_SUFFIXES:
            header = [c.strip() for c in self._read_header()]
            if all(col in header for col in self._OI_COLUMNS):
                return 'openimages'
            return 'table'
        raise ValueError(
            f'cannot tell the format of {self.ann_file} from its suffix '
            f'{suffix!r}; set `ann_format` to one of {self.FORMATS[1:]}.')

    def _make_data_list(self, img_paths: List[str],
                        labels: np.ndarray) -> List[dict]:
        """One data info per image; ``gt_tristate`` rows share ``labels``."""
        img_paths = join_paths(self.img_prefix, img_paths)
        gt_labels = positive_lists(labels)
        data_list = [
            dict(img_path=path, gt_tristate=labels[i], gt_label=gt_labels[i])
            for i, path in enumerate(img_paths)
        ]
        if self._loaded_clean is not None:
            for info, clean in zip(data_list, self._loaded_clean):
                info['gt_tristate_clean'] = clean
        return data_list

    # ----------------------------------------------------------------- table
    def _delimiter(self, header_line: str) -> str:
        if self.ann_file.lower().endswith('.tsv'):
            return '\t'
        if '\t' in header_line and ',' not in header_line:
            return '\t'
        return ','

    def _read_header(self) -> List[str]:
        with get_local_path(self.ann_file) as path, open(
                path, newline='', encoding='utf-8-sig') as f:
            line = f.readline()
        return next(csv.reader([line], delimiter=self._delimiter(line)), [])

    def _iter_rows(self):
        """Yield ``(row number, cells)`` of the table, the header first."""
        with get_local_path(self.ann_file) as path, open(
                path, newline='', encoding='utf-8-sig') as f:
            first = f.readline()
            f.seek(0)
            reader = csv.reader(f, delimiter=self._delimiter(first))
            for row in reader:
                if row:
                    yield reader.line_num, row

    def _where(self, line: int) -> str:
        return f'row {line} of {self.ann_file}'

    def _cell_value(self, cell: str, cache: dict, line: int,
                    class_name: str) -> int:
        """Parse one label cell of the table (and remember it in ``cache``).
        """
        text = cell.strip()
        if not text:
            value = self.default_label
        else:
            try:
                number = float(text)
            except ValueError:
                number = None
            if number not in (POSITIVE, NEGATIVE, UNKNOWN):
                raise ValueError(
                    f'{self._where(line)}, class {class_name!r}: label '
                    f'{cell!r} is not 1, 0, -1 or empty.')
            value = int(number)
        cache[cell] = value
        return value

    def _load_table(self) -> Tuple[List[str], List[str], np.ndarray]:
        """Format 1: header ``img_path,<class_1>,...,<class_K>``."""
        rows = self._iter_rows()
        line, header = next(rows, (1, []))
        header = [c.strip() for c in header]
        if not header or header[0] != 'img_path':
            raise ValueError(
                f'row 1 of {self.ann_file}: the header must be `img_path` '
                f'followed by the class names, got {header[:5]}.')
        classes = header[1:]
        if not classes or not all(classes):
            raise ValueError(f'row 1 of {self.ann_file}: empty class name '
                             f'in the header {header}.')
        num_cols = len(header)
        cache = {'1': POSITIVE, '0': NEGATIVE, '-1': UNKNOWN,
                 '': self.default_label}
        img_paths, values, first_row = [], [], {}
        for line, row in rows:
            if len(row) != num_cols:
                raise ValueError(
                    f'{self._where(line)}: expected {num_cols} columns '
                    f'(img_path and {num_cols - 1} classes), got '
                    f'{len(row)}.')
            img_path = row[0].strip()
            if not img_path:
                raise ValueError(f'{self._where(line)}: empty img_path.')
            if img_path in first_row:
                raise ValueError(
                    f'{self._where(line)}: image {img_path!r} already '
                    f'given in row {first_row[img_path]}.')
            first_row[img_path] = line
            try:
                row_values = [cache[cell] for cell in row[1:]]
            except KeyError:  # a spelling not seen yet: parse and check it
                row_values = None
            if row_values is None:
                row_values = [
                    cache[cell] if cell in cache else self._cell_value(
                        cell, cache, line, classes[j])
                    for j, cell in enumerate(row[1:])
                ]
            values.append(row_values)
            img_paths.append(img_path)
        labels = np.array(values, dtype=np.int8).reshape(-1, len(classes))
        return classes, img_paths, labels

    # ------------------------------------------------------------------ json
    def _load_json(self, given: Optional[List[str]]
                   ) -> Tuple[List[str], List[str], np.ndarray]:
        """Format 2: OpenMMLab 2.0 style, dense or sparse labels."""
        annotations = load_annotation_file(self.ann_file)
        if not isinstance(annotations, dict) or 'data_list' not in \
                annotations:
            raise ValueError(f'{self.ann_file} must hold a dict with a '
                             '`data_list` (and optionally `metainfo`).')
        if not annotations['data_list']:
            raise ValueError(f'{self.ann_file} holds no samples: its '
                             '`data_list` is empty.')
        file_meta = dict(annotations.get('metainfo') or {})
        for key, value in file_meta.items():
            if key != 'classes':
                self._metainfo.setdefault(key, value)
        classes = file_meta.get('classes', given)
        if classes is None:
            raise ValueError(
                f'no class names for {self.ann_file}: put them in its '
                '`metainfo.classes` or give `classes`/`metainfo`.')
        classes = list(classes)
        num_classes = len(classes)
        class_index = {name: i for i, name in enumerate(classes)}

        entries = annotations['data_list']
        labels = np.full((len(entries), num_classes), self.default_label,
                         dtype=np.int8)
        img_paths, first_entry = [], {}
        dense_rows, dense_values = [], []
        for i, entry in enumerate(entries):
            img_path = entry.get('img_path') if isinstance(entry,
                                                           dict) else None
            where = f'data_list[{i}] ({img_path}) of {self.ann_file}'
            if not img_path:
                raise ValueError(f'{where}: no `img_path`.')
            if img_path in first_entry:
                raise ValueError(f'{where}: image {img_path!r} already given '
                                 f'by data_list[{first_entry[img_path]}].')
            first_entry[img_path] = i
            img_paths.append(img_path)
            if 'gt_tristate' in entry:
                if 'positive' in entry or 'negative' in entry:
                    raise ValueError(f'{where}: give either `gt_tristate` or '
                                     '`positive`/`negative`, not both.')
                tristate = entry['gt_tristate']
                if len(tristate) != num_classes:
                    raise ValueError(
                        f'{where}: `gt_tristate` has {len(tristate)} labels, '
                        f'expected {num_classes}.')
                dense_rows.append(i)
                dense_values.append(tristate)
            elif 'positive' in entry or 'negative' in entry:
                pos = self._class_indices(
                    entry.get('positive', []), class_index, num_classes,
                    f'{where}, `positive`')
                neg = self._class_indices(
                    entry.get('negative', []), class_index, num_classes,
                    f'{where}, `negative`')
                both = set(pos) & set(neg)
                if both:
                    raise ValueError(f'{where}: classes {sorted(both)} are '
                                     'both positive and negative.')
                labels[i, neg] = NEGATIVE
                labels[i, pos] = POSITIVE
            else:
                raise ValueError(f'{where}: no labels; give `gt_tristate` or '
                                 '`positive`/`negative`.')
        if dense_rows:
            dense = np.asarray(dense_values)
            bad = ~np.isin(dense, (POSITIVE, NEGATIVE, UNKNOWN))
            if bad.any():
                row, col = np.argwhere(bad)[0]
                i = dense_rows[row]
                raise ValueError(
                    f'data_list[{i}] ({img_paths[i]}) of {self.ann_file}: '
                    f'label {dense[row, col].item()!r} of class '
                    f'{classes[col]!r} is '
                    'not 1, 0 or -1.')
            labels[dense_rows] = dense.astype(np.int8)
        self._loaded_clean = self._clean_labels(entries, num_classes)
        return classes, img_paths, labels

    def _clean_labels(self, entries, num_classes) -> Optional[np.ndarray]:
        """The ``gt_tristate_clean`` labels that the benchmark builders
        write beside corrupted ones, when every entry has them."""
        if not entries or not all('gt_tristate_clean' in entry
                                  for entry in entries):
            return None
        clean = np.asarray([entry['gt_tristate_clean'] for entry in entries])
        if clean.shape != (len(entries), num_classes) or not np.isin(
                clean, (POSITIVE, NEGATIVE, UNKNOWN)).all():
            raise ValueError(f'{self.ann_file}: `gt_tristate_clean` must '
                             f'hold {num_classes} labels of 1, 0 or -1 in '
                             'every entry.')
        return clean.astype(np.int8)

    @staticmethod
    def _class_indices(items, class_index: dict, num_classes: int,
                       where: str) -> List[int]:
        """Class indices of a sparse label list of indices or class names."""
        if isinstance(items, (str, int)):
            items = [items]
        indices = []
        for item in items:
            if isinstance(item, str):
                if item not in class_index:
                    raise ValueError(f'{where}: class {item!r} is not in the '
                                     'class list.')
                indices.append(class_index[item])
            elif isinstance(item, (int, np.integer)) and not isinstance(
                    item, bool):
                if not 0 <= item < num_classes:
                    raise ValueError(f'{where}: label index {item} out of '
                                     f'range [0, {num_classes}).')
                indices.append(int(item))
            else:
                raise ValueError(f'{where}: {item!r} is neither a class index '
                                 'nor a class name.')
        return indices

    # ------------------------------------------------------------ openimages
    def _load_openimages(self, given: Optional[List[str]]
                         ) -> Tuple[List[str], List[str], np.ndarray]:
        """Format 3: ``ImageID,LabelName,Confidence`` rows."""
        if given is None:
            raise ValueError(
                f'{self.ann_file} is an Open Images style label file, which '
                'names no class list: give `classes` (or metainfo classes), '
                'the LabelName values to use.')
        class_index = {name: i for i, name in enumerate(given)}
        num_classes = len(given)
        rows = self._iter_rows()
        _, header = next(rows)
        header = [c.strip() for c in header]
        missing = [c for c in self._OI_COLUMNS if c not in header]
        if missing:
            raise ValueError(f'row 1 of {self.ann_file}: no column(s) '
                             f'{missing} in the header {header}.')
        col_img, col_cls, col_conf = (header.index(c)
                                      for c in self._OI_COLUMNS)
        num_cols = len(header)
        confidences = {'1': POSITIVE, '0': NEGATIVE}
        image_index, img_ids = {}, []
        img_rows, cls_cols, values, lines = (array('q'), array('q'),
                                             array('b'), array('q'))
        for line, row in rows:
            if len(row) != num_cols:
                raise ValueError(
                    f'{self._where(line)}: expected {num_cols} columns '
                    f'{header}, got {len(row)}.')
            name = row[col_cls]
            cls = class_index.get(name)
            if cls is None:
                if self.skip_unknown_classes:
                    continue
                raise ValueError(
                    f'{self._where(line)}: class {name!r} is not in the '
                    'class list (set skip_unknown_classes=True to skip such '
                    'rows).')
            conf = row[col_conf]
            value = confidences.get(conf)
            if value is None:
                value = self._confidence(conf, self._where(line))
                confidences[conf] = value
            img_id = row[col_img]
            idx = image_index.get(img_id)
            if idx is None:
                if not img_id.strip():
                    raise ValueError(f'{self._where(line)}: empty ImageID.')
                idx = image_index[img_id] = len(img_ids)
                img_ids.append(img_id)
            img_rows.append(idx)
            cls_cols.append(cls)
            values.append(value)
            lines.append(line)

        img_rows = np.frombuffer(img_rows, dtype=np.int64)
        cls_cols = np.frombuffer(cls_cols, dtype=np.int64)
        values = np.frombuffer(values, dtype=np.int8)
        self._check_conflicts(img_rows, cls_cols, values,
                              np.frombuffer(lines, dtype=np.int64), img_ids,
                              given)
        labels = np.full((len(img_ids), num_classes), self.default_label,
                         dtype=np.int8)
        labels[img_rows, cls_cols] = values
        img_paths = [f'{img_id}{self.img_suffix}' for img_id in img_ids]
        return list(given), img_paths, labels

    @staticmethod
    def _confidence(text: str, where: str) -> int:
        try:
            number = float(text)
        except ValueError:
            number = None
        if number not in (POSITIVE, NEGATIVE):
            raise ValueError(f'{where}: Confidence {text!r} is not 1 '
                             '(positive) or 0 (negative).')
        return int(number)

    def _check_conflicts(self, img_rows, cls_cols, values, lines, img_ids,
                         classes):
        """Raise if an (image, class) pair is given twice with different
        labels; identical repeats are allowed."""
        if len(values) < 2:
            return
        key = img_rows * len(classes) + cls_cols
        order = np.argsort(key, kind='stable')
        key, values_sorted = key[order], values[order]
        conflict = (key[1:] == key[:-1]) & (values_sorted[1:] !=
                                            values_sorted[:-1])
        if conflict.any():
            j = int(np.flatnonzero(conflict)[0])
            first, second = order[j], order[j + 1]
            raise ValueError(
                f'rows {lines[first]} and {lines[second]} of {self.ann_file}: '
                f'image {img_ids[img_rows[first]]!r}, class '
                f'{classes[cls_cols[first]]!r} is labelled both '
                f'{values[first]} and {values[second]}.')

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [
            f'Annotation format: \t{self.ann_format}',
            f'Default label: \t{self.default_label}',
        ]
