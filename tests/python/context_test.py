"""det.experimental's context packing matches the CLI's (common/archive):
the same .detignore cases as tests/archive/detignore_test.cc, links kept
only when they stay inside, sorted entries, and the limits' message."""

import io
import os
import tarfile
import tempfile
import unittest
from unittest import mock

from det.experimental import _context
from det.experimental._context import DetIgnore, pack_context


class DetIgnoreTest(unittest.TestCase):
    def test_names_match_at_any_depth(self):
        ig = DetIgnore("# comment\n\n*.pyc\ndata\n")
        self.assertTrue(ig.ignored("a.pyc", False))
        self.assertTrue(ig.ignored("x/y/a.pyc", False))
        self.assertTrue(ig.ignored("data", True))
        self.assertTrue(ig.ignored("sub/data", False))
        self.assertFalse(ig.ignored("a.py", False))
        self.assertFalse(ig.ignored("mydata", False))
        self.assertFalse(ig.ignored("# comment", False))

    def test_trailing_slash_matches_directories_only(self):
        ig = DetIgnore("build/\n")
        self.assertTrue(ig.ignored("build", True))
        self.assertTrue(ig.ignored("a/build", True))
        self.assertFalse(ig.ignored("build", False))

    def test_leading_or_inner_slash_anchors_to_root(self):
        ig = DetIgnore("/top.txt\nlogs/*.log\n")
        self.assertTrue(ig.ignored("top.txt", False))
        self.assertFalse(ig.ignored("sub/top.txt", False))
        self.assertTrue(ig.ignored("logs/a.log", False))
        self.assertFalse(ig.ignored("x/logs/a.log", False))
        self.assertFalse(ig.ignored("logs/deep/a.log", False))

    def test_double_star_crosses_directories(self):
        ig = DetIgnore("**/cache\nout/**\n**/a/b.bin\n")
        self.assertTrue(ig.ignored("cache", True))
        self.assertTrue(ig.ignored("x/y/cache", True))
        self.assertTrue(ig.ignored("out/deep/file", False))
        self.assertTrue(ig.ignored("a/b.bin", False))
        self.assertTrue(ig.ignored("z/a/b.bin", False))
        self.assertFalse(ig.ignored("za/b.bin", False))

    def test_negation_reincludes_and_last_match_wins(self):
        ig = DetIgnore("*.bin\n!keep.bin\n")
        self.assertTrue(ig.ignored("a.bin", False))
        self.assertFalse(ig.ignored("keep.bin", False))
        self.assertFalse(ig.ignored("d/keep.bin", False))

    def test_empty_text_ignores_nothing(self):
        ig = DetIgnore("\r\n   \n")
        self.assertEqual(ig.patterns, [])
        self.assertFalse(ig.ignored("anything", False))


class PackTest(unittest.TestCase):
    def make_tree(self, d):
        os.makedirs(os.path.join(d, "sub", "build"))
        for rel, text in [("train.py", "print(1)\n"), ("b.txt", "b"),
                          ("sub/model.py", "m"), ("sub/x.pyc", "c"),
                          ("sub/build/out.o", "o"),
                          (".detignore", "*.pyc\nbuild/\n")]:
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        os.symlink("model.py", os.path.join(d, "sub", "inside"))
        os.symlink("../../etc/passwd", os.path.join(d, "sub", "outside"))
        os.symlink("/etc/passwd", os.path.join(d, "abs"))

    def test_pack_like_the_cli(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_tree(d)
            data = pack_context(d)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
                names = t.getnames()
                self.assertEqual(t.extractfile("train.py").read(),
                                 b"print(1)\n")
                self.assertEqual(t.getmember("sub/inside").linkname,
                                 "model.py")
            self.assertEqual(names, [".detignore", "b.txt", "sub",
                                     "sub/inside", "sub/model.py",
                                     "train.py"])

    def test_limits_name_the_excess(self):
        with tempfile.TemporaryDirectory() as d:
            self.make_tree(d)
            with mock.patch.object(_context, "MAX_FILES", 3):
                with self.assertRaises(ValueError) as cm:
                    pack_context(d)
            self.assertIn("6 files, directories and links, over the limit "
                          "of 3 by 3", str(cm.exception))
            self.assertIn(".detignore", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            pack_context("/nonexistent/dir")
        self.assertIn("does not exist", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
