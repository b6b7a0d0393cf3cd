"""Private numba kernels for :mod:`winolab.sparse`: they only loop; checks live in the caller.

One kernel, ``winograd_sparse``, does a whole sparse Winograd layer. ``prange`` runs over
*tasks*; a task is a block of images, a range of tile rows and a range of output channels,
chosen by :func:`winolab.sparse.plan_tasks`. Each task

1. transforms its input tiles into ``V[s, c, t]`` (``s = a * alpha + b`` the Winograd
   position, ``t`` the task's tiles, contiguous) with the row pass vectorised over image
   columns and the column pass vectorised over tiles; ReLU (Liu et al.) is applied here;
2. for every position ``s`` and output channel ``k`` multiplies the sparse row ``U[k, :, s]``
   (CSR) with the dense ``V[s]`` (C x T), ``T`` innermost, eight nonzeros per pass over the
   accumulator so that it is loaded and stored once per eight multiply-adds;
3. applies ``Y = AT M A`` vectorised over ``t`` and writes the cropped tiles plus bias.

The task's ``V`` (alpha^2 * C * T values) stays in the core's L2 cache between steps 1 and 2.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always", fastmath=True)
def _input_tiles(x, n0, n1, i0, i1, ph, pw, BT, m, tw, relu, V):
    # V[s, c, t] = (BT d B)[a, b] for tile t of images n0..n1, tile rows i0..i1.
    # Arrays are indexed directly in the loops (views made inside them are slow), and the
    # arithmetic runs over all T tiles of the task at once, so that its loops are long.
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    alpha = BT.shape[0]
    nr = i1 - i0
    L = nr * tw  # tiles per image in this task
    T = (n1 - n0) * L
    rows = (nr - 1) * m + alpha
    jw = tw + (alpha - 1) // m
    # D[pr, pc, I, J] = padded d[I m + pr, J m + pc]: the plane split into m x m phases, so
    # that element (u, v) of the tiles of tile row li is the run D[u%m, v%m, li + u//m, v//m:]
    D = np.zeros((m, m, (rows + m - 1) // m, jw), dtype=x.dtype)
    X = np.empty((alpha, alpha, T), dtype=x.dtype)  # X[u, v, t] = d_t[u, v]
    Wt = np.empty((alpha, alpha, T), dtype=x.dtype)
    r0 = i0 * m - ph
    um, utw = np.uint64(m), np.uint64(tw)
    # D[., pc, ., J] holds image column J m + pc - pw, inside the image for lo <= J < hi
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    for pc in range(m):
        lo[pc] = max(0, -((pc - pw) // m))
        hi[pc] = max(lo[pc], min(jw, (W - 1 - pc + pw) // m + 1))
    for c in range(C):
        for nl in range(n1 - n0):
            n = n0 + nl
            pr, I = 0, 0
            for rr in range(rows):
                xr = r0 + rr
                if 0 <= xr < H:
                    for pc in range(m):
                        # unsigned inner indices: numba skips its negative-index wraparound
                        J0 = np.uint64(lo[pc])
                        c0 = np.uint64(lo[pc] * m + pc - pw)
                        for jj in range(np.uint64(hi[pc] - lo[pc])):
                            D[pr, pc, I, J0 + jj] = x[n, c, xr, c0 + jj * um]
                pr += 1
                if pr == m:
                    pr, I = 0, I + 1
            for u in range(alpha):
                for v in range(alpha):
                    pu, ou, pv, uov = u % m, u // m, v % m, np.uint64(v // m)
                    for li in range(nr):
                        t0 = np.uint64(nl * L + li * tw)
                        for j in range(utw):
                            X[u, v, t0 + j] = D[pu, pv, li + ou, uov + j]
        # Wt = BT X   (every tile at once)
        for a in range(alpha):
            for v in range(alpha):
                for q in range(T):
                    Wt[a, v, q] = 0
                for u in range(alpha):
                    coef = BT[a, u]
                    if coef != 0:
                        for q in range(T):
                            Wt[a, v, q] += coef * X[u, v, q]
        # V = BT d B = Wt B, then Liu et al.'s ReLU in the Winograd domain
        for a in range(alpha):
            for b in range(alpha):
                s = a * alpha + b
                for q in range(T):
                    V[s, c, q] = 0
                for v in range(alpha):
                    coef = BT[b, v]
                    if coef != 0:
                        for q in range(T):
                            V[s, c, q] += coef * Wt[a, v, q]
                if relu:
                    for q in range(T):
                        V[s, c, q] = max(V[s, c, q], 0)


@njit(cache=True, inline="always", fastmath=True)
def _sparse_rows(V, s, k0, k1, indptr, indices, values, M):
    # M[s, k - k0, :] = sum_c U[k, c, s] V[s, c, :]   over the nonzeros of row (s, k) only;
    # eight nonzeros per sweep, so the accumulator row is loaded and stored once per eight
    T = V.shape[2]
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
def _output_tiles(M, kl, k, n0, i0, i1, AT, tw, bias, y):
    # y[n, k, tile] = AT M A + bias, cropped to the output
    m, alpha = AT.shape
    T = M.shape[2]
    h_out, w_out = y.shape[2], y.shape[3]
    tmp = np.empty((alpha, T), dtype=M.dtype)
    Y = np.empty((m * m, T), dtype=M.dtype)
    for i in range(m):
        # tmp[b] = sum_a AT[i, a] M[a, b]   (vectorised over tiles)
        for b in range(alpha):
            for t in range(T):
                tmp[b, t] = 0
            for a in range(alpha):
                coef = AT[i, a]
                if coef != 0:
                    for t in range(T):
                        tmp[b, t] += coef * M[a * alpha + b, kl, t]
        # Y[i, j] = bias + sum_b tmp[b] AT[j, b]
        for j in range(m):
            for t in range(T):
                Y[i * m + j, t] = bias[k]
            for b in range(alpha):
                coef = AT[j, b]
                if coef != 0:
                    for t in range(T):
                        Y[i * m + j, t] += coef * tmp[b, t]
    nr = i1 - i0
    um = np.uint64(m)
    for blk in range(T // tw):
        n = n0 + blk // nr
        ti = i0 + blk % nr
        for i in range(m):
            row = ti * m + i
            if row >= h_out:
                break
            # unsigned inner indices: numba skips its negative-index wraparound
            b0 = np.uint64(blk * tw)
            for j in range(m):
                uj = np.uint64(j)
                for tj in range(np.uint64(min(tw, (w_out - j + m - 1) // m))):
                    y[n, k, row, tj * um + uj] = Y[i * m + j, b0 + tj]


@njit(parallel=True, cache=True, fastmath=True)
def winograd_sparse(x, ph, pw, BT, AT, indptr, indices, values, bias, relu,
                    tasks, tw, y, counts, do_mac, work):
    """Sparse Winograd layer over ``tasks`` rows ``(n0, n1, i0, i1, k0, k1)``; fills ``y``.

    ``work`` is scratch, one row per thread, at least ``alpha^2 T (C + K_task)`` long.
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
        T = (n1 - n0) * (i1 - i0) * tw
        # per-thread scratch, reused across tasks and calls: fresh 2 MB arrays per task
        # would page-fault on every task
        buf = work[numba.get_thread_id()]
        V = buf[:S * C * T].reshape((S, C, T))
        _input_tiles(x, n0, n1, i0, i1, ph, pw, BT, m, tw, relu, V)
        M = buf[S * C * T:S * (C + k1 - k0) * T].reshape((S, k1 - k0, T))
        nnz = 0
        if do_mac:
            for s in range(S):
                _sparse_rows(V, s, k0, k1, indptr, indices, values, M)
                nnz += indptr[s, k1] - indptr[s, k0]
        counts[q] = nnz * T
        for k in range(k0, k1):
            _output_tiles(M, k - k0, k, n0, i0, i1, AT, tw, bias, y)
