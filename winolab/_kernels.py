"""Private numba kernels for :mod:`winolab.sparse`: they only loop; checks live in the caller.

One kernel, ``winograd_sparse``, does a whole sparse Winograd layer. ``prange`` runs over
*tasks*; a task is a block of images, a range of tile rows and a range of output channels,
chosen by :func:`winolab.sparse.plan_tasks`. Each task

1. transforms its input tiles into ``V[s, c, t]`` (``s = a * alpha + b`` the Winograd
   position, ``t`` the task's tiles, contiguous) in a *flat pitched* layout: the padded planes
   are split into their m x m phases (one pass per input row, its m strided runs in one
   loop), stored with the tile rows outermost, then the images, then ``jw = tw + (alpha -
   1) // m`` phase columns, so that for every element (u, v) the tiles' values are one run of
   the phase array and ``V = BT d B`` is a few passes over all tiles of the task at once:
   with the nonzeros of ``kron(BT, BT)`` where a row of it has at most four (F(2x2, 3x3)),
   else two 1-D passes with the rows of ``BT`` (F(4x4, 3x3)); ReLU (Liu et al.) is fused.
   The ``jw - tw`` extra tile columns per tile row are garbage, carried through the
   multiply and never written to y; where they would cost more than 25% (``tw < 4``: F(4x4) on
   8 x 8 maps) the tiles are gathered from one padded input row at a time instead;
2. for every position ``s`` and output channel ``k`` multiplies the sparse row ``U[k, :, s]``
   (CSR) with the dense ``V[s]`` (C x T), ``T`` innermost, eight nonzeros per pass over the
   accumulator so that it is loaded and stored once per eight multiply-adds;
3. applies ``Y = AT M A`` (the nonzeros of ``kron(AT, AT)``) over all tiles and writes the
   cropped tiles plus bias into ``y``: the task's rows of one output plane are a contiguous
   run, each element read from ``Y`` through a gather map built once per task.

A task's ``V`` (alpha^2 * C * T values, T about 256) is sized to stay in cache between steps 1
and 2.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always", fastmath=True)
def _input_tiles(x, n0, n1, i0, i1, ph, pw, BT, m, tw, relu, V, pitched):
    # V[s, c, t] = (BT d B)[a, b] for tile t of images n0..n1, tile rows i0..i1, with the
    # task's tiles in the order t = (li nb + nl) jw + j (tile row, image, tile column j < jw
    # = tw + (alpha - 1) // m; the columns j >= tw are garbage, never scattered) if pitched,
    # else t = (nl nr + li) tw + j (a row gather, for maps whose tile rows are short)
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    alpha = BT.shape[0]
    nb, nr = n1 - n0, i1 - i0
    e = (alpha - 1) // m
    jw = tw + e
    T = V.shape[2]
    rows = (nr - 1) * m + alpha
    Ir = (rows + m - 1) // m  # = nr + e phase rows
    P = Ir * nb * jw
    # D[pr, pc, I, nl, J] = padded d_nl[(i0 + I) m + pr, J m + pc], flat with pitch jw: for
    # every element (u, v) the tiles' values are ONE run D[off[u alpha + v]:][:T] (garbage
    # columns read past a row's end into the next, finite; jw spare values at the end).
    # Not pitched: D[u alpha + v, t] = X[u, v, t], gathered, off[u alpha + v] = (u alpha + v) T
    D = np.zeros(m * m * P + jw if pitched else alpha * alpha * T, dtype=x.dtype)
    off = np.empty(alpha * alpha, dtype=np.uint64)
    for u in range(alpha):
        for v in range(alpha):
            off[u * alpha + v] = ((((u % m) * m + v % m) * Ir + u // m) * nb * jw + v // m
                                  if pitched else (u * alpha + v) * T)
    kidx, kval, ng = _kron_terms(BT, x.dtype)
    ridx, rval, rng_ = _row_terms(BT, x.dtype)
    # two 1-D passes when the 2-D one would take more than one pass of four terms
    sep = ng.max() > 1
    Z2 = np.empty((alpha * alpha, T if sep else 1), dtype=x.dtype)
    r0 = i0 * m - ph
    um = np.uint64(m)
    # D[., pc, ., ., J] holds image column J m + pc - pw, inside the image for lo <= J < hi
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    for pc in range(m):
        lo[pc] = max(0, -((pc - pw) // m))
        hi[pc] = max(lo[pc], min(jw, (W - 1 - pc + pw) // m + 1))
    # input column m q + d is phase column (d + pw) % m, J = q + (d + pw) // m: pho[d] is
    # its offset in D from phase (0, 0) of the row, for q < nq
    pho = np.empty(m, dtype=np.int64)
    for d in range(m):
        pho[d] = ((d + pw) % m) * Ir * nb * jw + (d + pw) // m
    nq = max(0, min(W // m, jw - (m - 1 + pw) // m))
    uq, u1, u2, u3 = np.uint64(nq), np.uint64(1), np.uint64(2), np.uint64(3)
    Wp = tw * m + alpha - m  # padded columns the task's tiles cover
    rowbuf = np.zeros(Wp, dtype=x.dtype)  # its borders stay zero
    qlo = min(pw, Wp)
    qhi = max(qlo, min(Wp, W + pw))
    utw = np.uint64(tw)
    for c in range(C):
        for nl in range(nb if not pitched else 0):
            # the row gather: each padded input row read once, into all tiles that hold it
            for rr in range(rows):
                xr = r0 + rr
                if 0 <= xr < H:
                    for q in range(np.uint64(qlo), np.uint64(qhi)):
                        rowbuf[q] = x[n0 + nl, c, xr, q - np.uint64(pw)]
                else:
                    for q in range(qlo, qhi):
                        rowbuf[q] = 0
                # input row rr is row u = rr - li m of the tiles of tile row li
                for li in range(max(0, -((alpha - 1 - rr) // m)), min(nr, rr // m + 1)):
                    u = rr - li * m
                    for v in range(alpha):
                        t0 = np.uint64((u * alpha + v) * T + (nl * nr + li) * tw)
                        uv = np.uint64(v)
                        for j in range(utw):
                            D[t0 + j] = rowbuf[j * um + uv]
        # the phase split: each input row read once, m strided runs (borders stay zero)
        for nl in range(nb if pitched else 0):
            n = n0 + nl
            pr, I = 0, 0
            for rr in range(rows):
                xr = r0 + rr
                if 0 <= xr < H and (m == 2 or m == 4):
                    # the m phases in one loop: LLVM vectorises the stride-m group of loads
                    rb = (pr * m * Ir + I) * nb + nl
                    b0 = np.uint64(rb * jw + pho[0])
                    b1 = np.uint64(rb * jw + pho[1])
                    if m == 2:
                        for q in range(uq):
                            D[b0 + q] = x[n, c, xr, q * um]
                            D[b1 + q] = x[n, c, xr, q * um + u1]
                    else:
                        b2 = np.uint64(rb * jw + pho[2])
                        b3 = np.uint64(rb * jw + pho[3])
                        for q in range(uq):
                            D[b0 + q] = x[n, c, xr, q * um]
                            D[b1 + q] = x[n, c, xr, q * um + u1]
                            D[b2 + q] = x[n, c, xr, q * um + u2]
                            D[b3 + q] = x[n, c, xr, q * um + u3]
                    for xc in range(m * nq, W):  # the last W % m columns, or J >= jw
                        J = (xc + pw) // m
                        if J < jw:
                            D[(rb + ((xc + pw) % m) * Ir * nb) * jw + J] = x[n, c, xr, xc]
                elif 0 <= xr < H:
                    for pc in range(m):
                        # unsigned inner indices: numba skips its negative-index wraparound
                        b0 = np.uint64((((pr * m + pc) * Ir + I) * nb + nl) * jw + lo[pc])
                        c0 = np.uint64(lo[pc] * m + pc - pw)
                        for jj in range(np.uint64(hi[pc] - lo[pc])):
                            D[b0 + jj] = x[n, c, xr, c0 + jj * um]
                pr += 1
                if pr == m:
                    pr, I = 0, I + 1
        if sep:
            _separable(D, off, Z2, V, c, ridx, rval, rng_, alpha, relu)
        else:
            _kron_pass(D, off, V, c, kidx, kval, ng, relu)


@njit(cache=True, inline="always", fastmath=True)
def _kron_pass(D, off, V, c, kidx, kval, ng, relu):
    S, T = V.shape[0], V.shape[2]
    uT = np.uint64(T)
    # V[s] = sum over (u, v) of BT[a, u] BT[b, v] X[u, v]: the 2-D transform as one pass
    # per position over all tiles, four terms per pass (F(2x2, 3x3) has exactly four)
    for s in range(S):
        for g in range(ng[s]):
            p = 4 * g
            o0, o1 = off[kidx[s, p]], off[kidx[s, p + 1]]
            o2, o3 = off[kidx[s, p + 2]], off[kidx[s, p + 3]]
            k0, k1, k2, k3 = kval[s, p], kval[s, p + 1], kval[s, p + 2], kval[s, p + 3]
            if g > 0:
                for q in range(uT):
                    V[s, c, q] += (k0 * D[o0 + q] + k1 * D[o1 + q] + k2 * D[o2 + q]
                                   + k3 * D[o3 + q])
            elif relu and ng[s] == 1:  # Liu et al.'s ReLU, fused into the only pass
                for q in range(uT):
                    V[s, c, q] = max(k0 * D[o0 + q] + k1 * D[o1 + q] + k2 * D[o2 + q]
                                     + k3 * D[o3 + q], 0)
            else:
                for q in range(uT):
                    V[s, c, q] = (k0 * D[o0 + q] + k1 * D[o1 + q] + k2 * D[o2 + q]
                                  + k3 * D[o3 + q])
        if relu and ng[s] > 1:
            for q in range(T):
                V[s, c, q] = max(V[s, c, q], 0)


@njit(cache=True, inline="always", fastmath=True)
def _separable(D, off, Z2, V, c, ridx, rval, rng_, alpha, relu):
    # V = BT X B in two 1-D passes, for F(m, r) whose kron(BT, BT) rows hold more than four
    # nonzeros (F(4x4, 3x3): up to 16, against 2 x 4 terms in two passes); X[u, v] is the
    # run D[off[u alpha + v]:]
    T = Z2.shape[1]
    uT = np.uint64(T)
    # Z[a, v] = sum_u BT[a, u] X[u, v]
    for a in range(alpha):
        for v in range(alpha):
            zr = a * alpha + v
            for g in range(rng_[a]):
                p = 4 * g
                x0, x1 = off[ridx[a, p] * alpha + v], off[ridx[a, p + 1] * alpha + v]
                x2, x3 = off[ridx[a, p + 2] * alpha + v], off[ridx[a, p + 3] * alpha + v]
                w0, w1, w2, w3 = rval[a, p], rval[a, p + 1], rval[a, p + 2], rval[a, p + 3]
                if g == 0:
                    for q in range(uT):
                        Z2[zr, q] = (w0 * D[x0 + q] + w1 * D[x1 + q] + w2 * D[x2 + q]
                                     + w3 * D[x3 + q])
                else:
                    for q in range(uT):
                        Z2[zr, q] += (w0 * D[x0 + q] + w1 * D[x1 + q] + w2 * D[x2 + q]
                                      + w3 * D[x3 + q])
    # V[a alpha + b] = sum_v BT[b, v] Z[a, v]   (ReLU fused when one pass suffices)
    for a in range(alpha):
        for b in range(alpha):
            s = a * alpha + b
            for g in range(rng_[b]):
                p = 4 * g
                z0, z1 = a * alpha + ridx[b, p], a * alpha + ridx[b, p + 1]
                z2, z3 = a * alpha + ridx[b, p + 2], a * alpha + ridx[b, p + 3]
                w0, w1, w2, w3 = rval[b, p], rval[b, p + 1], rval[b, p + 2], rval[b, p + 3]
                if g > 0:
                    for q in range(T):
                        V[s, c, q] += (w0 * Z2[z0, q] + w1 * Z2[z1, q] + w2 * Z2[z2, q]
                                       + w3 * Z2[z3, q])
                elif relu and rng_[b] == 1:
                    for q in range(T):
                        V[s, c, q] = max(w0 * Z2[z0, q] + w1 * Z2[z1, q] + w2 * Z2[z2, q]
                                         + w3 * Z2[z3, q], 0)
                else:
                    for q in range(T):
                        V[s, c, q] = (w0 * Z2[z0, q] + w1 * Z2[z1, q] + w2 * Z2[z2, q]
                                      + w3 * Z2[z3, q])
            if relu and rng_[b] > 1:
                for q in range(T):
                    V[s, c, q] = max(V[s, c, q], 0)


@njit(cache=True, inline="always")
def _row_terms(A, dtype):
    # nonzeros of each row of A, in groups of four padded with zero coefficients
    R, K = A.shape
    width = ((K + 3) // 4) * 4
    idx = np.zeros((R, width), dtype=np.int64)
    val = np.zeros((R, width), dtype=dtype)
    ng = np.zeros(R, dtype=np.int64)
    for a in range(R):
        n = 0
        for u in range(K):
            if A[a, u] != 0:
                idx[a, n] = u
                val[a, n] = A[a, u]
                n += 1
        ng[a] = max(1, (n + 3) // 4)
    return idx, val, ng


@njit(cache=True, inline="always")
def _kron_terms(A, dtype):
    # nonzeros of kron(A, A) per row, in groups of four padded with zero coefficients:
    # row (a, b) of kron(A, A) x vec(X) is sum_{u, v} A[a, u] A[b, v] X[u, v]
    R, K = A.shape
    width = ((K * K + 3) // 4) * 4
    kidx = np.zeros((R * R, width), dtype=np.int64)
    kval = np.zeros((R * R, width), dtype=dtype)
    ng = np.zeros(R * R, dtype=np.int64)
    for a in range(R):
        for b in range(R):
            n = 0
            for u in range(K):
                for v in range(K):
                    coef = A[a, u] * A[b, v]
                    if coef != 0:
                        kidx[a * R + b, n] = u * K + v
                        kval[a * R + b, n] = coef
                        n += 1
            ng[a * R + b] = max(1, (n + 3) // 4)
    return kidx, kval, ng


@njit(cache=True, inline="always", fastmath=True)
def _sparse_rows(V, s, k0, k1, indptr, indices, values, M):
    # M[s, k - k0, :] = sum_c U[k, c, s] V[s, c, :]   over the nonzeros of row (s, k) only;
    # eight nonzeros per sweep, so the accumulator row is loaded and stored once per eight
    T = M.shape[2]
    for k in range(k0, k1):
        kl = k - k0
        for t in range(T):
            M[s, kl, t] = 0
        p = indptr[s, k]
        end = indptr[s, k + 1]
        while p + 8 <= end:
            u0, u1, u2, u3 = values[p], values[p + 1], values[p + 2], values[p + 3]
            u4, u5, u6, u7 = values[p + 4], values[p + 5], values[p + 6], values[p + 7]
            c0, c1, c2, c3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
            c4, c5, c6, c7 = indices[p + 4], indices[p + 5], indices[p + 6], indices[p + 7]
            for t in range(T):
                M[s, kl, t] += (u0 * V[s, c0, t] + u1 * V[s, c1, t] + u2 * V[s, c2, t]
                                + u3 * V[s, c3, t] + u4 * V[s, c4, t] + u5 * V[s, c5, t]
                                + u6 * V[s, c6, t] + u7 * V[s, c7, t])
            p += 8
        if p + 4 <= end:
            u0, u1, u2, u3 = values[p], values[p + 1], values[p + 2], values[p + 3]
            c0, c1, c2, c3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
            for t in range(T):
                M[s, kl, t] += (u0 * V[s, c0, t] + u1 * V[s, c1, t] + u2 * V[s, c2, t]
                                + u3 * V[s, c3, t])
            p += 4
        while p < end:
            u0, c0 = values[p], indices[p]
            for t in range(T):
                M[s, kl, t] += u0 * V[s, c0, t]
            p += 1


@njit(cache=True, inline="always", fastmath=True)
def _output_tiles(M, kl, k, n0, nb, i0, m, bias, y, kidx, kval, ng, Y, src, step):
    # y[n, k, tile] = AT M A + bias, cropped to the output; (kidx, kval, ng) = kron(AT, AT)
    T = M.shape[2]
    w_out = y.shape[3]
    # Y[i, j] = bias + sum over (a, b) of AT[i, a] AT[j, b] M[a, b]   (all tiles per pass)
    for r in range(m * m):
        for g in range(ng[r]):
            p = 4 * g
            i0_, i1_, i2_, i3_ = kidx[r, p], kidx[r, p + 1], kidx[r, p + 2], kidx[r, p + 3]
            k0, k1, k2, k3 = kval[r, p], kval[r, p + 1], kval[r, p + 2], kval[r, p + 3]
            if g == 0:
                b0 = bias[k]
                for t in range(T):
                    Y[r, t] = b0 + (k0 * M[i0_, kl, t] + k1 * M[i1_, kl, t]
                                    + k2 * M[i2_, kl, t] + k3 * M[i3_, kl, t])
            else:
                for t in range(T):
                    Y[r, t] += (k0 * M[i0_, kl, t] + k1 * M[i1_, kl, t]
                                + k2 * M[i2_, kl, t] + k3 * M[i3_, kl, t])
    # the cropped tiles go out through the task's gather map: y[n, k] rows i0 m ... are one
    # contiguous run, element p of it is Y.flat[src[p] + nl step]
    Yf = Y.reshape(Y.size)
    yf = y.reshape(y.size)
    K, plane = y.shape[1], y.shape[2] * y.shape[3]
    L = src.shape[0]
    for nl in range(nb):
        yo = np.uint64(((n0 + nl) * K + k) * plane + i0 * m * w_out)
        so = np.uint64(nl * step)
        for p in range(L):
            yf[yo + p] = Yf[so + src[p]]


@njit(cache=True, inline="always")
def _gather_map(h_out, w_out, i0, i1, nb, m, tw, jp, pitched, T):
    # for the output rows i0 m <= row < min(i1 m, h_out) of one image, element p of that run
    # is Y.flat[src[p] + nl step] of image nl: (i, j) = (row % m, col % m) picks the row of
    # Y, the tile (row // m - i0, col // m) its column
    nr = i1 - i0
    rows = min(i1 * m, h_out) - i0 * m
    src = np.empty(rows * w_out, dtype=np.uint64)
    for r in range(rows):
        li, i = r // m, r % m
        for col in range(w_out):
            tj, j = col // m, col % m
            t = li * nb * jp + tj if pitched else li * tw + tj
            src[r * w_out + col] = (i * m + j) * T + t
    return src, (jp if pitched else nr * tw)


@njit(parallel=True, cache=True, fastmath=True)
def winograd_sparse(x, ph, pw, BT, AT, indptr, indices, values, bias, relu,
                    tasks, tw, y, counts, do_mac, work):
    """Sparse Winograd layer over ``tasks`` rows ``(n0, n1, i0, i1, k0, k1)``; fills ``y``.

    ``work`` is scratch, one row per thread, at least ``alpha^2 T (C + K_task)`` long, with
    ``T = n_images n_tile_rows (tw + (alpha - 1) // m)`` (the pitched tiles of a task).
    ``counts[task]`` receives the multiplications the task performed in step 2.
    ``do_mac=False`` skips step 2, leaving stale (finite) scratch in M and so garbage in ``y``:
    the benchmark times the transforms alone that way.
    """
    C = x.shape[1]
    m, alpha = AT.shape
    S = alpha * alpha
    for q in prange(tasks.shape[0]):
        n0, n1, i0, i1, k0, k1 = (tasks[q, 0], tasks[q, 1], tasks[q, 2], tasks[q, 3],
                                  tasks[q, 4], tasks[q, 5])
        jw = tw + (alpha - 1) // m
        # the garbage columns cost at most 25%; shorter tile rows are gathered (F(4x4) at 8x8)
        pitched = tw >= 4 * (jw - tw)
        jp = jw if pitched else tw
        T = (n1 - n0) * (i1 - i0) * jp  # with the garbage tile columns
        # per-thread scratch, reused across tasks and calls: fresh 2 MB arrays per task
        # would page-fault on every task
        buf = work[numba.get_thread_id()]
        V = buf[:S * C * T].reshape((S, C, T))
        _input_tiles(x, n0, n1, i0, i1, ph, pw, BT, m, tw, relu, V, pitched)
        M = buf[S * C * T:S * (C + k1 - k0) * T].reshape((S, k1 - k0, T))
        nnz = 0
        if do_mac:
            for s in range(S):
                _sparse_rows(V, s, k0, k1, indptr, indices, values, M)
                nnz += indptr[s, k1] - indptr[s, k0]
        counts[q] = nnz * (n1 - n0) * (i1 - i0) * tw
        kidx, kval, ng = _kron_terms(AT, x.dtype)
        Y = np.empty((m * m, T), dtype=x.dtype)
        src, step = _gather_map(y.shape[2], y.shape[3], i0, i1, n1 - n0, m, tw, jp, pitched, T)
        for k in range(k0, k1):
            _output_tiles(M, k - k0, k, n0, n1 - n0, i0, m, bias, y, kidx, kval, ng, Y, src,
                          step)
