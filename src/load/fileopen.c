/*
 * fileopen.c - opening the files a model or a user names, safely.
 *
 * Every file onnx-run reads or writes goes through here, so three rules hold
 * everywhere:
 *  - nothing blocks: files are opened with O_NONBLOCK (a FIFO opens at once
 *    instead of waiting for a writer), then fstat'ed, and anything but a
 *    regular file is refused before a byte is read;
 *  - an external-data location stays beneath the model's directory: it is
 *    resolved by the kernel with openat2(RESOLVE_BENEATH |
 *    RESOLVE_NO_MAGICLINKS) where that exists, else component by component
 *    here, each directory opened with O_NOFOLLOW and each symbolic link read
 *    and followed by hand only while it stays beneath the directory. A link
 *    that stays inside (weights/w.bin -> ../shared/w.bin) is allowed; one that
 *    leads out (to /etc/passwd, or a symlinked directory elsewhere) is
 *    refused, and so are absolute link targets, as RESOLVE_BENEATH does;
 *  - an output file is created without following a symbolic link and must be
 *    a regular file (never a FIFO or a device).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__linux__) && __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define ONR_HAVE_OPENAT2 1
#endif

#include "load/load.h"

int onr_resolve_portable_only = 0;

/* Directories deeper than this inside the model's directory are refused (a
 * bound for the portable resolver's stack of directory descriptors). */
#define ONR_MAX_DIR_DEPTH 64
/* Symbolic links followed in one location, as the kernel's MAXSYMLINKS. */
#define ONR_MAX_LINKS 40

/* fd is open: require a regular file, then make reads blocking again. */
static int finish_regular(int fd, struct stat *st, const char *what, const char *path,
                          onr_err *err)
{
    struct stat s;
    if (fstat(fd, &s) != 0) {
        int e = errno;
        close(fd);
        onr_seterr(err, ONR_E_IO, "%s '%s' cannot be examined: %s", what, path, strerror(e));
        return -1;
    }
    if (!S_ISREG(s.st_mode)) {
        close(fd);
        onr_seterr(err, ONR_E_IO, "%s '%s' is not a regular file (it is a %s)", what, path,
                   S_ISFIFO(s.st_mode)  ? "FIFO"
                   : S_ISDIR(s.st_mode) ? "directory"
                   : S_ISCHR(s.st_mode) || S_ISBLK(s.st_mode) ? "device"
                   : S_ISSOCK(s.st_mode) ? "socket"
                                         : "special file");
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (st) *st = s;
    return fd;
}

int onr_open_regular(const char *path, const char *what, struct stat *st, onr_err *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        onr_seterr(err, ONR_E_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    return finish_regular(fd, st, what, path, err);
}

int onr_create_regular(const char *path, onr_err *err)
{
    /* O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of waiting;
     * no O_TRUNC until the file is known to be a regular file */
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                  0666);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            onr_seterr(err, ONR_E_IO, "cannot create '%s': it is a symbolic link (refused)", path);
        else if (e == ENXIO)
            onr_seterr(err, ONR_E_IO, "cannot create '%s': it is a FIFO or device (refused)",
                       path);
        else
            onr_seterr(err, ONR_E_IO, "cannot create '%s': %s", path, strerror(e));
        return -1;
    }
    struct stat s;
    if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode)) {
        close(fd);
        onr_seterr(err, ONR_E_IO, "cannot create '%s': it exists and is not a regular file "
                   "(refused)", path);
        return -1;
    }
    if (ftruncate(fd, 0) != 0) {
        int e = errno;
        close(fd);
        onr_seterr(err, ONR_E_IO, "cannot truncate '%s': %s", path, strerror(e));
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* ---- resolving beneath a directory ---------------------------------------- */

static int escape_error(onr_err *err, const char *loc, const char *how)
{
    onr_seterr(err, ONR_E_MODEL,
               "external data location '%s' leads outside the model's directory (%s); "
               "refused",
               loc, how);
    return -1;
}

/* The portable resolver: walk rel from the directory root one component at a
 * time. Directories are opened with O_NOFOLLOW, so a component swapped for a
 * link between the check and the open fails instead of being followed. */
static int open_beneath_portable(int root, const char *loc, onr_err *err)
{
    int stack[ONR_MAX_DIR_DEPTH + 1];
    int depth = 0, links = 0, fd = -1;
    stack[0] = root;
    /* the part still to resolve; a link's target is spliced in front of it */
    char *rest = malloc(PATH_MAX), *tmp = malloc(PATH_MAX), *target = malloc(PATH_MAX);
    if (!rest || !tmp || !target) {
        onr_seterr(err, ONR_E_NOMEM, "out of memory");
        goto out;
    }
    if ((size_t)snprintf(rest, PATH_MAX, "%s", loc) >= PATH_MAX) {
        onr_seterr(err, ONR_E_MODEL, "external data location is too long");
        goto out;
    }
    for (;;) {
        char *p = rest;
        while (*p == '/') p++;
        if (!*p) { /* the location names a directory ("sub/" or ".") */
            onr_seterr(err, ONR_E_IO, "external data file '%s' is not a regular file (it is a "
                       "directory)", loc);
            goto out;
        }
        char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char comp[NAME_MAX + 1];
        if (n > NAME_MAX) {
            onr_seterr(err, ONR_E_IO, "external data file '%s': a name is too long", loc);
            goto out;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        char *next = slash ? slash + 1 : p + n;
        int last = 1;
        for (const char *q = next; *q; q++)
            if (*q != '/') last = 0;
        memmove(rest, next, strlen(next) + 1);
        if (strcmp(comp, ".") == 0) {
            if (last) {
                onr_seterr(err, ONR_E_IO, "external data file '%s' is not a regular file (it "
                           "is a directory)", loc);
                goto out;
            }
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            if (depth == 0) {
                escape_error(err, loc, "a symbolic link climbs above it with '..'");
                goto out;
            }
            close(stack[depth--]);
            if (last) {
                onr_seterr(err, ONR_E_IO, "external data file '%s' is not a regular file (it "
                           "is a directory)", loc);
                goto out;
            }
            continue;
        }
        struct stat s;
        if (fstatat(stack[depth], comp, &s, AT_SYMLINK_NOFOLLOW) != 0) {
            onr_seterr(err, ONR_E_IO, "external data file '%s' cannot be opened: %s", loc,
                       strerror(errno));
            goto out;
        }
        if (S_ISLNK(s.st_mode)) {
            if (++links > ONR_MAX_LINKS) {
                onr_seterr(err, ONR_E_IO, "external data file '%s': too many symbolic links",
                           loc);
                goto out;
            }
            ssize_t k = readlinkat(stack[depth], comp, target, PATH_MAX - 1);
            if (k < 0) {
                onr_seterr(err, ONR_E_IO, "external data file '%s': cannot read link '%s': %s",
                           loc, comp, strerror(errno));
                goto out;
            }
            target[k] = 0;
            if (target[0] == '/' || k == 0) {
                escape_error(err, loc, "a symbolic link points to an absolute path");
                goto out;
            }
            if ((size_t)snprintf(tmp, PATH_MAX, "%s%s%s", target, *rest ? "/" : "", rest) >=
                PATH_MAX) {
                onr_seterr(err, ONR_E_IO, "external data file '%s': path too long", loc);
                goto out;
            }
            memcpy(rest, tmp, strlen(tmp) + 1);
            continue;
        }
        if (last) {
            fd = openat(stack[depth], comp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC |
                                                O_NOCTTY);
            if (fd < 0)
                onr_seterr(err, ONR_E_IO, "external data file '%s' cannot be opened: %s", loc,
                           errno == ELOOP ? "it changed into a symbolic link while opened"
                                          : strerror(errno));
            goto out;
        }
        if (depth == ONR_MAX_DIR_DEPTH) {
            onr_seterr(err, ONR_E_IO, "external data file '%s' lies more than %d directories "
                       "deep", loc, ONR_MAX_DIR_DEPTH);
            goto out;
        }
        int d = openat(stack[depth], comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0) {
            onr_seterr(err, ONR_E_IO, "external data file '%s' cannot be opened: %s", loc,
                       strerror(errno));
            goto out;
        }
        stack[++depth] = d;
    }
out:
    while (depth > 0) close(stack[depth--]);
    free(rest);
    free(tmp);
    free(target);
    return fd;
}

int onr_open_beneath(const char *dir, const char *loc, struct stat *st, onr_err *err)
{
    int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        onr_seterr(err, ONR_E_IO, "external data file '%s': the model's directory '%s' cannot "
                   "be opened: %s", loc, dir, strerror(errno));
        return -1;
    }
    int fd = -1, done = 0;
#ifdef ONR_HAVE_OPENAT2
    if (!onr_resolve_portable_only) {
        struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        fd = (int)syscall(SYS_openat2, root, loc, &how, sizeof how);
        int e = errno;
        /* ENOSYS: an older kernel; EPERM/E2BIG: a seccomp filter or an older
         * struct: resolve by hand instead */
        done = fd >= 0 || (e != ENOSYS && e != EPERM && e != E2BIG);
        if (fd < 0 && done) {
            if (e == EXDEV)
                escape_error(err, loc, "through a symbolic link, an absolute link or '..'");
            else if (e == ELOOP)
                onr_seterr(err, ONR_E_IO, "external data file '%s' cannot be opened: too many "
                           "symbolic links, or a link through /proc (refused)", loc);
            else
                onr_seterr(err, ONR_E_IO, "external data file '%s' cannot be opened: %s", loc,
                           strerror(e));
        }
    }
#endif
    if (!done) fd = open_beneath_portable(root, loc, err);
    close(root);
    if (fd < 0) return -1;
    return finish_regular(fd, st, "external data file", loc, err);
}
