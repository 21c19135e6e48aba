/* fake_vendor.c - the "vendor runtime" fakemod-novendor links against; the test runs without it
 * on the library path, as a node of the other vendor runs without libcublasLt. */
void hb_fake_vendor_init(void);
void hb_fake_vendor_init(void) {}
