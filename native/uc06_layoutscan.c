/*
 * uc06_layoutscan: the inner loops of UC6's GDSII and OASIS decoders, compiled.
 *
 * Plain CPython C API, no other dependency. Each function is a line-by-line port of a fast path
 * of semiconductor-eda/functions/metadata_extraction/ (gdsii._Parser._fast_elements,
 * oasis._Parser.stream's in-buffer loop, the byte sum of layout.Decoder): it accepts exactly the
 * records the Python fast path accepts, stops where that one stops, and leaves everything else
 * (every error, every unusual record) to the Python record grammar. The Python code stays the
 * reference and the fallback when this module is absent; tests/property/test_uc06_parser_native.py
 * compares both on generated and fuzzed files.
 *
 * Built by scripts/build-native.sh (into the Lambda layer by scripts/build-layer.sh).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* --- layer sets ------------------------------------------------------------------------------ */

/* Add (layer, datatype) to ``set``; values < 0 stand for the given objects (None or a large int). */
static int
add_pair(PyObject *set, long layer, long datatype, PyObject *layer_obj, PyObject *datatype_obj)
{
    PyObject *a = layer >= 0 ? PyLong_FromLong(layer) : Py_NewRef(layer_obj);
    PyObject *b = datatype >= 0 ? PyLong_FromLong(datatype) : Py_NewRef(datatype_obj);
    if (a == NULL || b == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, a, b);
    Py_DECREF(a);
    Py_DECREF(b);
    if (pair == NULL)
        return -1;
    int rc = PySet_Add(set, pair);
    Py_DECREF(pair);
    return rc;
}

/* Add the pair unless it is the one added last (shapes come layer by layer: few set insertions). */
static inline int
note_pair(PyObject *set, long layer, long datatype, long *last_layer, long *last_datatype, PyObject *layer_obj,
          PyObject *datatype_obj)
{
    if (layer == *last_layer && datatype == *last_datatype)
        return 0;
    if (add_pair(set, layer, datatype, layer_obj, datatype_obj) < 0)
        return -1;
    *last_layer = layer;
    *last_datatype = datatype;
    return 0;
}

/* --- GDSII ----------------------------------------------------------------------------------- */

static inline uint32_t
be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint32_t
be16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | (uint32_t)p[1];
}

/* The optional records of PATH and TEXT between the type record and XY: (header word, length). */
static const uint32_t PATH_OPTIONAL[][2] = {
    {0x00062102, 6}, {0x00080F03, 8}, {0x00083003, 8}, {0x00083103, 8},
};
static const uint32_t TEXT_OPTIONAL[][2] = {
    {0x00061701, 6}, {0x00062102, 6}, {0x00080F03, 8}, {0x00061A01, 6}, {0x000C1B05, 12}, {0x000C1C05, 12},
};

PyDoc_STRVAR(gdsii_fast_doc,
"gdsii_fast(buf, pos, layers) -> (pos, count)\n\n"
"Consume the run of plain BOUNDARY, PATH and TEXT elements wholly in buf from pos, exactly as\n"
"gdsii._Parser._fast_elements does; add their (layer, datatype) pairs to the set layers.");

static PyObject *
gdsii_fast(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    PyObject *layers;
    if (!PyArg_ParseTuple(args, "y*nO!", &view, &pos, &PySet_Type, &layers))
        return NULL;
    const uint8_t *buf = view.buf;
    const Py_ssize_t size = view.len;
    const Py_ssize_t end = size - 20;
    Py_ssize_t count = 0;
    long last_layer = -1, last_datatype = -1;
    if (pos < 0)
        pos = 0;
    while (pos <= end) {
        const uint8_t *p = buf + pos;
        uint32_t kind = be32(p), w_layer = be32(p + 4), w_type = be32(p + 10), word = be32(p + 16);
        long layer = be16(p + 8), datatype = be16(p + 14);
        if (w_layer != 0x00060D02)
            break;
        Py_ssize_t at = pos + 16;
        if (kind == 0x00040800) { /* BOUNDARY */
            if (w_type != 0x00060E02)
                break;
        } else {
            const uint32_t(*optional)[2];
            size_t n;
            if (kind == 0x00040900) {
                if (w_type != 0x00060E02)
                    break;
                optional = PATH_OPTIONAL;
                n = sizeof PATH_OPTIONAL / sizeof PATH_OPTIONAL[0];
            } else if (kind == 0x00040C00) {
                if (w_type != 0x00061602)
                    break;
                optional = TEXT_OPTIONAL;
                n = sizeof TEXT_OPTIONAL / sizeof TEXT_OPTIONAL[0];
            } else {
                break;
            }
            int strans = 0;
            for (size_t i = 0; i < n; i++) {
                if (word != optional[i][0])
                    continue;
                if (optional[i][0] == 0x00061A01) {
                    strans = 1;
                } else if (optional[i][0] >= 0x000C0000 && !strans) { /* MAG or ANGLE without STRANS */
                    word = 0;
                    break;
                }
                at += optional[i][1];
                if (at + 4 > size) {
                    word = 0;
                    break;
                }
                word = be32(buf + at);
            }
        }
        /* XY with data type INT4 and a length of 4 + 8k, k >= 1 */
        if ((word & 0x7FFFF) != 0x41003 || word < 0xC0000)
            break;
        at += word >> 16;
        if (kind == 0x00040C00) { /* TEXT: then a STRING record */
            if (at + 4 > size)
                break;
            uint32_t text = be32(buf + at);
            if ((text & 0x1FFFF) != 0x1906 || text < 0x40000)
                break;
            at += text >> 16;
        }
        if (at + 4 > size || be32(buf + at) != 0x00041100) /* ENDEL */
            break;
        pos = at + 4;
        if (note_pair(layers, layer, datatype, &last_layer, &last_datatype, NULL, NULL) < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        count++;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nn", pos, count);
}

/* --- OASIS ----------------------------------------------------------------------------------- */

enum { PAD = 0, XYABSOLUTE = 15, XYRELATIVE = 16, TEXT = 19, RECTANGLE = 20, POLYGON = 21, PATH = 22 };

/* The position after ``count`` unsigned-integers (at most 10 bytes each) from ``pos``, or -1 when
 * they are not wholly in the buffer (oasis._run("uint", count).match). */
static inline Py_ssize_t
skip_uints(const uint8_t *buf, Py_ssize_t size, Py_ssize_t pos, long count)
{
    if (count == 0)
        return pos > size ? size : pos; /* an empty match, as re clamps pos */
    for (; count > 0; count--) {
        Py_ssize_t limit = pos + 10;
        for (;;) {
            if (pos >= size)
                return -1;
            if (buf[pos++] < 0x80)
                break;
            if (pos >= limit)
                return -1;
        }
    }
    return pos;
}

/* The same for g-deltas: one integer with bit 0 clear, or one with bit 0 set and a second one. */
static inline Py_ssize_t
skip_gdeltas(const uint8_t *buf, Py_ssize_t size, Py_ssize_t pos, long count)
{
    if (count == 0)
        return pos > size ? size : pos;
    for (; count > 0; count--) {
        if (pos >= size)
            return -1;
        int two = buf[pos] & 1;
        pos = skip_uints(buf, size, pos, 1 + two);
        if (pos < 0)
            return -1;
    }
    return pos;
}

static inline Py_ssize_t
skip_items(const uint8_t *buf, Py_ssize_t size, Py_ssize_t pos, int gdelta, long count)
{
    return gdelta ? skip_gdeltas(buf, size, pos, count) : skip_uints(buf, size, pos, count);
}

/* Repetition types 1-11: integers, g-deltas, and the list kind (0 none, 1 uint, 2 g-delta). */
static const signed char REPETITION[12][3] = {
    {-1, 0, 0}, {4, 0, 0}, {2, 0, 0}, {2, 0, 0}, {0, 0, 1}, {1, 0, 1},
    {0, 0, 1},  {1, 0, 1}, {2, 2, 0}, {1, 1, 0}, {0, 0, 2}, {1, 0, 2},
};

/* oasis._skip_repetition: the position after the repetition at pos, or -1 (also when the read
 * would run past the buffer, where the Python code raises IndexError: both end the fast path). */
static Py_ssize_t
skip_repetition(const uint8_t *buf, Py_ssize_t size, Py_ssize_t pos)
{
    if (pos >= size)
        return -1;
    unsigned kind = buf[pos++];
    if (kind == 0)
        return pos;
    if (kind > 11)
        return -1;
    int uints = REPETITION[kind][0], gdeltas = REPETITION[kind][1], listed = REPETITION[kind][2];
    if (listed == 0) {
        pos = skip_uints(buf, size, pos, uints);
        if (pos >= 0 && gdeltas)
            pos = skip_gdeltas(buf, size, pos, gdeltas);
        return pos;
    }
    if (pos >= size)
        return -1;
    unsigned dimension = buf[pos];
    if (dimension >= 0x7F)
        return -1;
    pos = skip_uints(buf, size, pos + 1, uints);
    if (pos >= 0)
        pos = skip_items(buf, size, pos, listed == 2, (long)dimension + 1);
    return pos;
}

/* A modal variable: a small value (0-127, read here), -1 for None, -2 for the object given. */
static long
modal_in(PyObject *obj)
{
    if (obj == Py_None)
        return -1;
    if (PyLong_CheckExact(obj)) {
        int overflow = 0;
        long value = PyLong_AsLongAndOverflow(obj, &overflow);
        if (!overflow && value >= 0 && value < 0x80)
            return value;
    }
    return -2;
}

static PyObject *
modal_out(long value, PyObject *given)
{
    if (value == -1)
        Py_RETURN_NONE;
    if (value == -2)
        return Py_NewRef(given);
    return PyLong_FromLong(value);
}

PyDoc_STRVAR(oasis_fast_doc,
"oasis_fast(buf, pos, layer, datatype, textlayer, texttype, in_cell, layers, limit)\n"
"    -> (pos, count, layer, datatype, textlayer, texttype)\n\n"
"The in-buffer loop of oasis._Parser.stream: decode the common records from pos until one is\n"
"unusual or runs past the buffer (pos is then its start) or limit elements were counted; add the\n"
"(layer, datatype) pairs to the set layers and return the modal variables as they are then.");

static PyObject *
oasis_fast(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, limit;
    PyObject *layer_obj, *datatype_obj, *textlayer_obj, *texttype_obj, *layers;
    int in_cell;
    if (!PyArg_ParseTuple(args, "y*nOOOOpO!n", &view, &pos, &layer_obj, &datatype_obj, &textlayer_obj,
                          &texttype_obj, &in_cell, &PySet_Type, &layers, &limit))
        return NULL;
    const uint8_t *buf = view.buf;
    const Py_ssize_t size = view.len;
    long layer = modal_in(layer_obj), datatype = modal_in(datatype_obj);
    long textlayer = modal_in(textlayer_obj), texttype = modal_in(texttype_obj);
    long last_layer = -3, last_datatype = -3, last_textlayer = -3, last_texttype = -3;
    Py_ssize_t count = 0, start = pos;
    if (pos < 0)
        pos = start = 0;

#define NEED(n) \
    if (pos + (n) > size) \
    goto stop /* where Python's buf[i] raises IndexError */
/* A layer, datatype, text layer or text type in one byte; a longer one ends the fast path. */
#define SMALL(var) \
    do { \
        NEED(1); \
        (var) = buf[pos++]; \
        if ((var) >= 0x80) \
            goto stop; \
    } while (0)
    while (count < limit) {
        start = pos;
        NEED(1);
        unsigned rid = buf[pos];
        if (rid == RECTANGLE && pos + 1 < size && buf[pos + 1] == 0x7B) {
            /* The common rectangle: explicit layer, datatype, width, height, x, y. */
            NEED(4);
            layer = buf[pos + 2];
            datatype = buf[pos + 3];
            if (layer >= 0x80 || datatype >= 0x80 || !in_cell)
                goto stop;
            Py_ssize_t next = skip_uints(buf, size, pos + 4, 4);
            if (next < 0)
                goto stop;
            pos = next;
            if (note_pair(layers, layer, datatype, &last_layer, &last_datatype, layer_obj, datatype_obj) < 0)
                goto error;
            count++;
        } else if (rid == RECTANGLE || rid == POLYGON || rid == PATH) {
            NEED(2);
            unsigned info = buf[pos + 1];
            pos += 2;
            if (info & 0x01)
                SMALL(layer);
            if (info & 0x02)
                SMALL(datatype);
            long skip, after;
            int point_list;
            if (rid == PATH) {
                skip = 0;
                if (info & 0x40) { /* half-width */
                    pos = skip_uints(buf, size, pos, 1);
                    if (pos < 0)
                        goto stop;
                }
                if (info & 0x80) { /* extension scheme 0000SSEE, then the explicit ones */
                    NEED(1);
                    unsigned scheme = buf[pos++];
                    if (scheme >= 0x80)
                        goto stop;
                    skip += (((scheme >> 2) & 3) == 3) + ((scheme & 3) == 3);
                }
                point_list = (info & 0x20) != 0;
                after = ((info & 0x10) != 0) + ((info & 0x08) != 0);
            } else if (rid == RECTANGLE) { /* SWHXYRDL */
                skip = ((info & 0x40) != 0) + ((info & 0x20) != 0);
                point_list = 0;
                after = ((info & 0x10) != 0) + ((info & 0x08) != 0);
            } else { /* POLYGON 00PXYRDL */
                skip = 0;
                point_list = (info & 0x20) != 0;
                after = ((info & 0x10) != 0) + ((info & 0x08) != 0);
            }
            if (point_list) {
                if (skip) {
                    pos = skip_uints(buf, size, pos, skip);
                    if (pos < 0)
                        goto stop;
                    skip = 0;
                }
                NEED(2);
                unsigned kind = buf[pos], points = buf[pos + 1];
                if (kind > 5 || points >= 0x80)
                    goto stop;
                pos = skip_items(buf, size, pos + 2, kind >= 4, points);
                if (pos < 0)
                    goto stop;
            }
            skip += after;
            if (skip) {
                pos = skip_uints(buf, size, pos, skip);
                if (pos < 0)
                    goto stop;
            }
            if (info & 0x04) {
                pos = skip_repetition(buf, size, pos);
                if (pos < 0)
                    goto stop;
            }
            if (!in_cell)
                goto stop;
            if (layer != -1 && datatype != -1 &&
                note_pair(layers, layer, datatype, &last_layer, &last_datatype, layer_obj, datatype_obj) < 0)
                goto error;
            count++;
        } else if (rid == TEXT) {
            NEED(2);
            unsigned info = buf[pos + 1];
            pos += 2;
            if (info & 0x40) { /* explicit text string: a reference number or a string */
                if (info & 0x20) {
                    pos = skip_uints(buf, size, pos, 1);
                    if (pos < 0)
                        goto stop;
                } else {
                    NEED(1);
                    unsigned length = buf[pos];
                    if (length >= 0x80)
                        goto stop;
                    pos += 1 + (Py_ssize_t)length;
                }
            }
            if (info & 0x01)
                SMALL(textlayer);
            if (info & 0x02)
                SMALL(texttype);
            long skip = ((info & 0x10) != 0) + ((info & 0x08) != 0);
            if (skip) {
                pos = skip_uints(buf, size, pos, skip);
                if (pos < 0)
                    goto stop;
            }
            if (info & 0x04) {
                pos = skip_repetition(buf, size, pos);
                if (pos < 0)
                    goto stop;
            }
            if (pos > size || !in_cell)
                goto stop;
            if (textlayer != -1 && texttype != -1 &&
                note_pair(layers, textlayer, texttype, &last_textlayer, &last_texttype, textlayer_obj, texttype_obj) < 0)
                goto error;
            count++;
        } else if (rid == PAD) {
            pos++;
            while (pos < size && buf[pos] == 0)
                pos++;
        } else if (rid == XYABSOLUTE || rid == XYRELATIVE) {
            pos++;
        } else {
            goto stop;
        }
    }
    start = pos; /* the loop's limit reached: everything up to pos is decoded */
stop:
#undef NEED
#undef SMALL
    PyBuffer_Release(&view);
    {
        PyObject *l = modal_out(layer, layer_obj), *d = modal_out(datatype, datatype_obj);
        PyObject *tl = modal_out(textlayer, textlayer_obj), *tt = modal_out(texttype, texttype_obj);
        PyObject *result = NULL;
        if (l && d && tl && tt)
            result = Py_BuildValue("nnOOOO", start, count, l, d, tl, tt);
        Py_XDECREF(l);
        Py_XDECREF(d);
        Py_XDECREF(tl);
        Py_XDECREF(tt);
        return result;
    }
error:
    PyBuffer_Release(&view);
    return NULL;
}

/* --- byte sum -------------------------------------------------------------------------------- */

PyDoc_STRVAR(byte_sum_doc,
"byte_sum(data, start=0) -> int\n\n(start + the sum of the bytes of data) mod 2**32: OASIS checksum-32.");

static PyObject *
byte_sum(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    unsigned long long start = 0;
    if (!PyArg_ParseTuple(args, "y*|K", &view, &start))
        return NULL;
    const uint8_t *p = view.buf;
    uint64_t total = start & 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < view.len; i++)
        total += p[i];
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(total & 0xFFFFFFFFu);
}

static PyMethodDef methods[] = {
    {"gdsii_fast", gdsii_fast, METH_VARARGS, gdsii_fast_doc},
    {"oasis_fast", oasis_fast, METH_VARARGS, oasis_fast_doc},
    {"byte_sum", byte_sum, METH_VARARGS, byte_sum_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "uc06_layoutscan",
    .m_doc = "Compiled inner loops of UC6's GDSII and OASIS decoders (the Python code is the reference).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit_uc06_layoutscan(void)
{
    return PyModule_Create(&module);
}
