// The demo report's pieces (train/report.cpp): base64 against RFC 4648's test vectors, the log reader,
// the SVG charts' geometry, and a whole report that inlines its pictures.
#include "common/pch/torch_pch.h"

#include <gtest/gtest.h>

#include <regex>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/image_io.h"
#include "tests/train/train_test_util.h"
#include "train/report.h"

namespace m3vit {
namespace {

TEST(Report, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x10", 3)), "/wAQ");
  EXPECT_EQ(html_escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
}

TEST(Report, ReadsTrainRecordsOfTheLog) {
  const std::string d = test::scratch_dir("report_log");
  write_file_atomic(d + "/log.jsonl",
                    "{\"type\":\"train\",\"step\":1,\"loss\":2.5,\"aux\":0.1,\"losses\":{\"semseg\":2.0}}\n"
                    "{\"type\":\"eval\",\"step\":1,\"delta_m\":null}\n"
                    "{\"type\":\"train\",\"step\":2,\"loss\":1.5,\"losses\":{\"semseg\":1.0}}\n");
  auto c = read_loss_curve(d + "/log.jsonl");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].step, 2);
  EXPECT_EQ(c[0].values.at("loss"), 2.5);
  EXPECT_EQ(c[0].values.at("aux"), 0.1);
  EXPECT_EQ(c[1].values.at("semseg"), 1.0);
  write_file_atomic(d + "/bad.jsonl", "{\"type\":\"train\",\n");
  EXPECT_THROW(read_loss_curve(d + "/bad.jsonl"), FormatError);
}

TEST(Report, LineChartMapsPointsIntoThePlot) {
  // Two points (step 1, 4) and (step 2, 2): unsmoothed at the first point; x spans the plot width.
  std::vector<CurvePoint> c(2);
  c[0].step = 1, c[0].values["loss"] = 4;
  c[1].step = 2, c[1].values["loss"] = 2;
  const std::string svg = svg_line_chart(c, {"loss"}, "t", false, 300, 200);
  // Plot area: x from 56 to 300-150 = 150, y from 24 to 200-32 = 168. EMA: 4, 0.9*4+0.1*2 = 3.8.
  // y range [3.8, 4]: first point at the top (y 24), second at the bottom (y 168); x = 56 + 94*step/2.
  EXPECT_NE(svg.find("points=\"103.0,24.0 150.0,168.0 \""), std::string::npos) << svg;
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
}

TEST(Report, HeatMapColoursCellsByShare) {
  const std::string svg = svg_heat_map({{0.5, 0.25}, {0.0, 0.5}}, {"a", "b"}, {"0", "1"}, "layer");
  std::regex cell("<rect [^>]*fill=\"(#[0-9a-f]{6})\"");
  std::vector<std::string> fills;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), cell); it != std::sregex_iterator(); ++it)
    fills.push_back((*it)[1]);
  ASSERT_EQ(fills.size(), 4u);
  EXPECT_EQ(fills[0], fills[3]);  // equal shares, equal colours (the maximum: pale yellow)
  EXPECT_EQ(fills[0], "#fcffa4");
  EXPECT_EQ(fills[2], "#000004");  // zero: the darkest stop
  EXPECT_NE(fills[1], fills[0]);
  EXPECT_NE(svg.find("50.0%"), std::string::npos);  // tooltips in percent
}

TEST(Report, WritesOneSelfContainedFile) {
  const std::string d = test::scratch_dir("report_html");
  Image8 im;
  im.width = 2, im.height = 1, im.channels = 3;
  im.pixels = {255, 0, 0, 0, 255, 0};
  std::filesystem::create_directories(d + "/images");
  write_png(d + "/images/x.png", im);
  DemoReport r;
  r.title = "demo <test>";
  r.tasks = {"semseg"};
  r.facts = {{"model", "tiny"}};
  r.after.tasks = {"semseg"};
  r.after.metrics["semseg"]["mIoU"] = 0.5;
  r.after.headline["semseg"] = 0.5;
  r.has_before = true;
  r.before.metrics["semseg"]["mIoU"] = 0.125;
  CurvePoint p;
  p.step = 1, p.values = {{"loss", 1.0}, {"semseg", 1.0}};
  r.curve = {p};
  r.pictures = {{"x", "images/x.png", {{"semseg", {"images/x.png", "images/x.png"}}}}};
  r.usage.tasks = {"semseg"};
  r.usage.moe_blocks = {1};
  r.usage.experts = 2;
  r.usage.share = {{{0.75, 0.25}}};
  write_report(d, r);
  const std::string html = read_file(d + "/report.html");
  EXPECT_NE(html.find("demo &lt;test&gt;"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64," + base64_encode(read_file(d + "/images/x.png"))), std::string::npos);
  EXPECT_EQ(html.find("src=\"images/"), std::string::npos);  // nothing referenced outside the file
  EXPECT_NE(html.find("0.125"), std::string::npos);
  EXPECT_NE(html.find("MoE layer 0 (block 1)"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
}

}  // namespace
}  // namespace m3vit
