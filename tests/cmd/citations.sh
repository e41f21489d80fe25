# citations.sh - every citation points into the repository (docs/architecture.md §8): no source,
# test, script or document cites a document that is not in the repository (the original design
# and style notes, the research notes, a format spec outside docs/), and every docs/ file, numbered
# section (docs/X.md §N.M, docs/X.md section N) and quoted heading (docs/X.md "Heading") that is
# cited exists. The checker first proves on a planted tree that it finds each kind of bad citation.
. "$FWREL_SRC/tests/lib.sh"

# citations_check ROOT: prints one line "file:line: problem" per bad citation under ROOT.
citations_check() {
    (
        cd "$1" || exit 1
        find CMakeLists.txt HACKING.md README.md .ci bench cmd docs examples fuzz keystore \
            libfwrel policies scripts templates tests -type f ! -path 'fuzz/corpus/*' \
            ! -path 'tests/cmd/citations.sh' 2>/dev/null | LC_ALL=C sort |
            perl -e '
use strict;
use warnings;
my @outside = (
    [qr/\b(?:DESIGN|STYLE)\.md\b/, "a document outside the repository"],
    [qr/\bresearch\/|\b(?:anchor-tools|style-models|reliability-matrix)\b/, "the research notes"],
    [qr/shared\/(?!vectors\b)/, "a shared document (only shared/vectors, the test input, is used)"],
    [qr/(?<!docs\/)\bspec\/esp-formats/, "the shared format spec, not docs/esp-formats.md"],
    [qr/(?<![\w>.\/-])spec(?:\x27s)?[ ,(]*(?:\xc2\xa7|sections?\b|\d)/, "\"spec N\": not a document of the repository"],
    [qr/\bthe spec\b/i, "\"the spec\": name the document (docs/esp-formats.md)"],
);
my %heads;
sub headings {
    my ($doc) = @_;
    return $heads{$doc} if exists $heads{$doc};
    my @h;
    if (open(my $fh, "<", $doc)) {
        while (<$fh>) {
            push @h, $_ if /^#+ / || /^\*\*/;
        }
        close $fh;
    }
    return $heads{$doc} = \@h;
}
sub has_section {
    my ($doc, $n) = @_;
    my $re = $n =~ /\./ ? qr/^#+ \Q$n\E\b/ : qr/^#+ \Q$n\E\.\s/;
    return scalar grep { $_ =~ $re } @{headings($doc)};
}
sub has_heading {
    my ($doc, $t) = @_;
    return scalar grep { /^#+ .*\Q$t\E/i || /^\*\*\Q$t\E/i } @{headings($doc)};
}
my $bad = 0;
while (my $file = <STDIN>) {
    chomp $file;
    next if -B $file;
    open(my $fh, "<", $file) or next;
    while (my $line = <$fh>) {
        my $where = "$file:$.";
        for my $o (@outside) {
            if ($line =~ $o->[0]) {
                print "$where: cites $o->[1]: $&\n";
            }
        }
        while ($line =~ m{\bdocs/([\w./-]*[\w/])}g) {
            my $p = "docs/$1";
            next if $p =~ /<|\*/;
            next if $p !~ /\.(?:md|1)$/ && $p !~ /\/$/ && !-e $p;
            print "$where: $p does not exist\n" unless -e $p;
        }
        while ($line =~ m{\b(docs/[\w/-]+\.md)((?:[\s,;:]*(?:and\s+)?\xc2\xa7\d+(?:\.\d+)*(?:\s*(?:-|\xe2\x80\x93)\s*(?:\xc2\xa7)?\d+(?:\.\d+)*)?)+)}g) {
            my ($doc, $list) = ($1, $2);
            next unless -e $doc;
            for my $n ($list =~ /(\d+(?:\.\d+)*)/g) {
                print "$where: $doc has no section $n\n" unless has_section($doc, $n);
            }
        }
        while ($line =~ m{\b(docs/[\w/-]+\.md),? sections? (\d+(?:\.\d+)*)}g) {
            my ($doc, $n) = ($1, $2);
            print "$where: $doc has no section $n\n" if -e $doc && !has_section($doc, $n);
        }
        while ($line =~ m{\b(docs/[\w/-]+\.md) "([^"]+)"}g) {
            my ($doc, $t) = ($1, $2);
            print "$where: $doc has no heading \"$t\"\n" if -e $doc && !has_heading($doc, $t);
        }
    }
    close $fh;
}
'
    )
}

# The checker finds each kind of bad citation in a planted tree ...
mkdir -p "$T/tree/docs" "$T/tree/libfwrel/src"
printf '# F\n\n## 1. One\n\n### 1.2 Two\n\n**Lead.** text\n' >"$T/tree/docs/f.md"
cat >"$T/tree/libfwrel/src/a.c" <<'EOF'
/* good: docs/f.md §1.2, §1; docs/f.md section 1; docs/f.md "Lead"; docs/f.md "One" */
/* bad 2: exit codes (DESIGN.md) */
/* bad 3: STYLE.md 7 */
/* bad 4: research/anchor-tools.md */
/* bad 5: ../shared/spec/esp-formats.md §2.4 */
/* bad 6: spec 2.4 */
/* bad 7: spec §1.3 */
/* bad 8: spec section 4.1 */
/* bad 9: the digest the spec derives */
/* bad 10: docs/missing.md */
/* bad 11: docs/f.md §1.3 */
/* bad 12: docs/f.md §1, §2 */
/* bad 13: docs/f.md section 3 */
/* bad 14: docs/f.md "Nothing" */
/* fine: data in ../shared/vectors; spec->slot; struct spec sp; */
EOF
got=$(citations_check "$T/tree")
for n in 2 3 4 5 6 7 8 9 10 11 12 13 14; do
    if printf '%s\n' "$got" | grep -q "^libfwrel/src/a.c:$n: "; then ok; else
        fail "the checker misses line $n of the planted file; it said: $got"
    fi
done
lines=$(printf '%s\n' "$got" | cut -d: -f1,2 | sort -u | grep -c . || true)
if [ "$lines" -eq 13 ]; then ok; else fail "13 problems expected in the planted tree: $got"; fi

# ... and finds none in the repository.
got=$(citations_check "$FWREL_SRC")
if [ -z "$got" ]; then ok; else fail "citations that do not point into the repository:
$got"; fi
finish
