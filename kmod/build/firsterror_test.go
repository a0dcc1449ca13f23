package build

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFirstError(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  string
		dirs []string
		want *FirstError
	}{
		{
			name: "gcc in a build root",
			log: `make: Entering directory '/usr/src/linux-headers-5.10.0-46-cloud-amd64'
  CC [M]  /build/kmatrix.o
/build/kmatrix.c: In function 'kmatrix_release':
/build/kmatrix.c:167:2: error: implicit declaration of function 'kvfree'; did you mean 'kfree'? [-Werror=implicit-function-declaration]
  167 |  kvfree(f->buf);
/build/kmatrix.c:170:2: error: second error
make[2]: *** [/usr/src/linux-headers-5.10.0-46-common/scripts/Makefile.build:291: /build/kmatrix.o] Error 1`,
			dirs: []string{"/build", "/tmp/out/debian-bullseye"},
			want: &FirstError{File: "kmatrix.c", Line: 167, Col: 2, Message: "implicit declaration of function 'kvfree'; did you mean 'kfree'? [-Werror=implicit-function-declaration]"},
		},
		{
			name: "host build, subdirectory, fatal error",
			log:  "/tmp/out/k/sub/a.c:3:10: fatal error: nope.h: No such file or directory\ncompilation terminated.\n",
			dirs: []string{"/tmp/out/k/"},
			want: &FirstError{File: "sub/a.c", Line: 3, Col: 10, Message: "nope.h: No such file or directory"},
		},
		{
			name: "error in a kernel header stays absolute",
			log:  "/usr/src/linux-headers-6.1.0-56-common/include/linux/fs.h:12:1: error: boom\n",
			dirs: []string{"/build"},
			want: &FirstError{File: "/usr/src/linux-headers-6.1.0-56-common/include/linux/fs.h", Line: 12, Col: 1, Message: "boom"},
		},
		{
			name: "modpost",
			log:  "  MODPOST /build/Module.symvers\nERROR: modpost: \"kmatrix_nope\" [/build/kmatrix.ko] undefined!\nmake[2]: *** [scripts/Makefile.modpost:126: /build/Module.symvers] Error 1\n",
			want: &FirstError{Message: `"kmatrix_nope" [/build/kmatrix.ko] undefined!`},
		},
		{
			name: "objtool before the make lines (7.2)",
			log: `make[1]: Entering directory '/build'
  CC [M]  objtoolerror.o
objtoolerror.o: error: objtool: init_module(): Magic init_module() function name is deprecated, use module_init(fn) instead
make[3]: *** [/usr/src/linux-headers-7.2.13+deb14-common/scripts/Makefile.build:294: objtoolerror.o] Error 255
make[3]: *** Deleting file 'objtoolerror.o'`,
			dirs: []string{"/build"},
			want: &FirstError{File: "objtoolerror.o", Message: "objtool: init_module(): Magic init_module() function name is deprecated, use module_init(fn) instead"},
		},
		{
			name: "linker",
			log:  "  LD [M]  /build/m.ko\nld: /build/m.o: in function `f':\nld: m.c:(.text+0x5): undefined reference to `g'\nmake[2]: *** [scripts/Makefile.modfinal:56: /build/m.ko] Error 1\n",
			want: &FirstError{Message: "ld: m.c:(.text+0x5): undefined reference to `g'"},
		},
		{
			name: "make only",
			log:  "make: *** No rule to make target 'modules'.  Stop.\n",
			want: &FirstError{Message: "No rule to make target 'modules'.  Stop."},
		},
		{name: "clean log", log: "  CC [M]  /build/kmatrix.o\n  LD [M]  /build/kmatrix.ko\n"},
		{name: "warnings are not errors", log: "/build/kmatrix.c:3:1: warning: unused\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseFirstError(tc.log, tc.dirs...)
			if tc.want == nil {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.Equal(t, *tc.want, *got)
		})
	}
}

func TestFirstErrorString(t *testing.T) {
	assert.Equal(t, "a.c:1:2: x", FirstError{File: "a.c", Line: 1, Col: 2, Message: "x"}.String())
	assert.Equal(t, "a.c:1: x", FirstError{File: "a.c", Line: 1, Message: "x"}.String())
	assert.Equal(t, "x", FirstError{Message: "x"}.String())
	assert.Equal(t, "a.o: objtool: x", FirstError{File: "a.o", Message: "objtool: x"}.String())
}
